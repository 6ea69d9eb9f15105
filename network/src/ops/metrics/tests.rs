//! Tests of the metrics registry and its text rendering.

use super::*;

#[test]
fn renders_sorted_families_with_help_and_type() {
    let r = Registry::new();
    let b = r.counter("b_total", "Second.").unwrap();
    let a = r.gauge("a_gauge", "First.").unwrap();
    b.inc_by(3);
    a.set(-1.5);
    assert_eq!(
        r.render(),
        "# HELP a_gauge First.\n# TYPE a_gauge gauge\na_gauge -1.5\n\
         # HELP b_total Second.\n# TYPE b_total counter\nb_total 3\n"
    );
}

#[test]
fn escapes_label_values_and_help() {
    let r = Registry::new();
    let v = r
        .counter_vec("esc_total", "Help with \\ and\nnewline \"kept\".", &["v"])
        .unwrap();
    v.with(&["a\\b\"c\nd"]).inc();
    assert_eq!(
        r.render(),
        "# HELP esc_total Help with \\\\ and\\nnewline \"kept\".\n\
         # TYPE esc_total counter\n\
         esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"
    );
}

#[test]
fn labelled_children_sorted_and_empty_family_omitted() {
    let r = Registry::new();
    let v = r.gauge_vec("g", "G.", &["ch", "org"]).unwrap();
    r.counter_vec("unused_total", "Never used.", &["x"])
        .unwrap();
    v.with(&["b", "Org1"]).set(2.0);
    v.with(&["a", "Org2"]).inc();
    v.with(&["a", "Org2"]).inc();
    v.with(&["a", "Org2"]).dec();
    assert_eq!(
        r.render(),
        "# HELP g G.\n# TYPE g gauge\ng{ch=\"a\",org=\"Org2\"} 1\ng{ch=\"b\",org=\"Org1\"} 2\n"
    );
}

#[test]
fn histogram_buckets_are_cumulative_and_le_inclusive() {
    let r = Registry::new();
    let h = r
        .histogram("h_seconds", "H.", &[0.5, 1.0, f64::INFINITY])
        .unwrap();
    for v in [0.25, 0.5, 1.0, 4.0, f64::NAN] {
        h.observe(v);
    }
    assert_eq!(
        r.render(),
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n\
         h_seconds_bucket{le=\"0.5\"} 2\nh_seconds_bucket{le=\"1\"} 3\n\
         h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 5.75\nh_seconds_count 4\n"
    );
}

#[test]
fn timer_observes_once() {
    let h = Registry::new()
        .histogram("t", "T.", DEFAULT_BUCKETS)
        .unwrap();
    let secs = h.start_timer().observe_duration();
    assert!(secs >= 0.0);
    {
        let _t = h.start_timer();
    }
    h.start_timer().stop_and_discard();
    assert_eq!(h.count(), 2);
}

#[test]
fn special_values_and_gauge_fn() {
    let r = Registry::new();
    r.gauge_fn("inf", "I.", || f64::INFINITY).unwrap();
    r.gauge_fn("nan", "N.", || f64::NAN).unwrap();
    r.gauge_fn("panics", "P.", || panic!("boom")).unwrap();
    let text = r.render();
    assert!(text.contains("\ninf +Inf\n"), "{text}");
    assert!(text.contains("\nnan NaN\n"), "{text}");
    assert!(text.contains("\npanics NaN\n"), "{text}");
}

#[test]
fn reregistration_returns_existing_or_conflicts() {
    let r = Registry::new();
    let a = r.counter("c_total", "C.").unwrap();
    let b = r.counter("c_total", "Other help.").unwrap();
    b.inc();
    assert_eq!(a.get(), 1);
    assert!(matches!(
        r.float_counter("c_total", "C."),
        Err(MetricsError::Conflict { .. })
    ));
    r.gauge("g", "G.").unwrap();
    assert!(matches!(
        r.histogram("g", "G.", &[1.0]),
        Err(MetricsError::Conflict { .. })
    ));
    r.counter_vec("v_total", "V.", &["a"]).unwrap();
    assert!(r.counter_vec("v_total", "V.", &["a"]).is_ok());
    assert!(matches!(
        r.counter_vec("v_total", "V.", &["b"]),
        Err(MetricsError::Conflict { .. })
    ));
    r.histogram("h", "H.", &[1.0]).unwrap();
    assert!(r.histogram("h", "H.", &[2.0]).is_err());
    r.gauge_fn("f", "F.", || 1.0).unwrap();
    assert!(r.gauge_fn("f", "F.", || 2.0).is_err());
}

#[test]
fn rejects_bad_names_labels_and_buckets() {
    let r = Registry::new();
    for bad in ["", "1abc", "a-b", "a b", "é"] {
        assert!(
            matches!(r.counter(bad, "x"), Err(MetricsError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(r.counter("ok:name_1_total", "x").is_ok());
    for bad in [&["a:b"][..], &["__x"], &["a", "a"], &[""]] {
        assert!(
            matches!(
                r.counter_vec("l_total", "x", bad),
                Err(MetricsError::InvalidLabelName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(r.histogram("b1", "x", &[1.0, 1.0]).is_err());
    assert!(r.histogram("b2", "x", &[f64::NAN]).is_err());
    assert!(r.histogram("b3", "x", &[]).is_ok());
}

#[test]
fn total_suffix_is_for_counters_only() {
    let r = Registry::new();
    for (result, what) in [
        (r.counter("c", "x").map(drop), "counter without _total"),
        (
            r.float_counter("f_seconds", "x").map(drop),
            "float counter without _total",
        ),
        (
            r.counter_vec("v", "x", &["a"]).map(drop),
            "counter vec without _total",
        ),
        (r.gauge("g_total", "x").map(drop), "gauge with _total"),
        (r.gauge_fn("gf_total", "x", || 1.0), "gauge fn with _total"),
        (
            r.histogram("h_total", "x", &[1.0]).map(drop),
            "histogram with _total",
        ),
        (
            r.gauge_vec_fn("gv_total", "x", &["a"], Vec::new),
            "gauge vec fn with _total",
        ),
    ] {
        assert!(
            matches!(result, Err(MetricsError::TypeSuffix { .. })),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn float_counter_only_goes_up() {
    let r = Registry::new();
    let c = r.float_counter("work_seconds_total", "Work.").unwrap();
    c.inc_by(0.25);
    c.inc_by(-5.0);
    c.inc_by(f64::NAN);
    c.inc_by(0.5);
    assert_eq!(
        r.render(),
        "# HELP work_seconds_total Work.\n# TYPE work_seconds_total counter\nwork_seconds_total 0.75\n"
    );
}

#[test]
fn gauge_vec_fn_is_computed_at_every_scrape() {
    let r = Registry::new();
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    r.gauge_vec_fn("left_seconds", "Left.", &["cert"], move || {
        let v = n2.fetch_add(1, Ordering::Relaxed) as f64;
        vec![
            (vec!["tls".into()], v),
            (vec!["signing".into()], v),
            (vec!["bad".into(), "extra".into()], v),
        ]
    })
    .unwrap();
    let first = "# HELP left_seconds Left.\n# TYPE left_seconds gauge\n\
                 left_seconds{cert=\"signing\"} 0\nleft_seconds{cert=\"tls\"} 0\n";
    assert_eq!(r.render(), first);
    assert_eq!(r.render(), first.replace(" 0\n", " 1\n"));
    assert!(
        r.gauge_vec_fn("left_seconds", "Left.", &["cert"], Vec::new)
            .is_err()
    );
}

#[test]
fn wrong_label_count_is_detached_or_error() {
    let r = Registry::new();
    let v = r.counter_vec("w_total", "W.", &["a", "b"]).unwrap();
    v.with(&["only-one"]).inc();
    assert_eq!(r.render(), "");
    assert_eq!(
        v.try_with(&["x"]).unwrap_err(),
        MetricsError::LabelCount {
            metric: "w_total".into(),
            expected: 2,
            got: 1
        }
    );
}
