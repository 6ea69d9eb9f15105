//! `qcss epcis export|import` on a real network (three orgs, the
//! traceability contract deployed as in `traceability.rs`): a short history
//! of a harvest lot is exported as EPCIS 2.0 JSON-LD, which GS1's EPCIS 2.0
//! JSON schema accepts and whose event ids are the CBV 2.0 event hashes
//! GS1's reference implementation computes; the transformation is one
//! event (same id, quantities, units, places) in the input's and in the
//! output's export; the document is imported into a second lot of the same
//! product registered on the same network (its commissioning is skipped,
//! the already recorded transformation refused, the ObjectEvents recorded),
//! and exporting the second lot gives the same ObjectEvents (business step,
//! disposition, times, places, attachments, data), ignoring event ids and
//! record times.

use qcss_tests::peers::{Network, NetworkOptions, traceability_wasm};
use qcss_tests::trace::{SHA, gs1, now, submit};
use qcss_tests::{epcis_schema_check, reference_event_hashes};
use serde_json::{Value, json};

fn batch_args(gtin: &str, lot: &str, quantity: u64) -> Value {
    json!({"gtin": gtin, "lot": lot, "quantity": quantity, "uom": "KGM",
           "production_date": "2025-06-01", "site": "Suzhou orchard 3"})
}

fn read_json(p: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("EPCIS JSON")
}

/// Checks `file` as GS1's tools do: the EPCIS 2.0 JSON schema accepts it
/// and every `eventID` is the event's CBV 2.0 hash by GS1's reference
/// implementation.
fn check_with_gs1_tools(file: &std::path::Path) {
    let doc = read_json(file);
    if let Some(r) = epcis_schema_check(&[file]) {
        r.unwrap_or_else(|e| panic!("GS1's EPCIS 2.0 schema refuses the export:\n{e}\n{doc:#}"));
    }
    if let Some(hashes) = reference_event_hashes(file) {
        let ids: Vec<String> = events(&doc)
            .iter()
            .map(|e| e["eventID"].as_str().expect("eventID").to_owned())
            .collect();
        assert_eq!(ids, hashes, "eventID = CBV 2.0 event hash:\n{doc:#}");
    }
}

fn events(doc: &Value) -> Vec<Value> {
    doc["epcisBody"]["eventList"]
        .as_array()
        .expect("eventList")
        .clone()
}

/// An event without what differs between two recordings of it.
fn comparable(e: &Value) -> Value {
    let mut e = e.clone();
    let o = e.as_object_mut().expect("event object");
    for k in ["eventID", "recordTime", "quantityList", "epcList"] {
        o.remove(k);
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip() {
    let started = std::time::Instant::now();
    let d = tempfile::tempdir().expect("tempdir");
    let net = Network::start(
        d.path(),
        NetworkOptions {
            example_policy: None,
            ..NetworkOptions::default()
        },
    );
    net.orgs[0].enroll("producer", "client", Some("enterprise"));
    net.orgs[2].enroll("inspector", "client", Some("regulator"));
    net.deploy("traceability", "1.0", 1, &traceability_wasm(), "", &[]);
    eprintln!("network up in {:?}", started.elapsed());

    let mut producer = net.gateway_as(1, 1, "producer").await;
    let mut regulator = net.gateway_as(3, 3, "inspector").await;
    submit(
        &mut producer,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "fruit",
               "valid_until": now() + 365 * 24 * 3600}),
    )
    .await;
    submit(&mut regulator, "approve_permit", json!({"msp": "Org1MSP"})).await;
    let loquat = gs1("0690123456001");
    let juice = gs1("0690123456002");
    for (g, name) in [(&loquat, "Loquat"), (&juice, "Loquat juice")] {
        submit(
            &mut producer,
            "register_product",
            json!({"gtin": g, "name": name, "category": "fruit"}),
        )
        .await;
    }
    let (h1, h1b) = (format!("{loquat}/E1"), format!("{loquat}/E1B"));
    submit(
        &mut producer,
        "register_batch",
        batch_args(&loquat, "E1", 500),
    )
    .await;

    // A short history: harvest (QCSS step, attachment, data), storing, a
    // transformation into juice, shipping.
    let t = now() - 600;
    submit(
        &mut producer,
        "add_event",
        json!({"target": h1, "biz_step": "harvesting", "event_time": t,
               "event_time_zone_offset": "+08:00", "read_point": "urn:epc:id:sgln:6901234.00001.0",
               "attachments": [{"sha256": SHA, "name": "field.jpg", "media_type": "image/jpeg"}],
               "data": {"brix": 12.5, "picker": "team 3"}}),
    )
    .await;
    submit(
        &mut producer,
        "add_event",
        json!({"target": h1, "biz_step": "storing", "disposition": "in_progress",
               "event_time": t + 60, "biz_location": "cold room 2"}),
    )
    .await;
    submit(
        &mut producer,
        "transform",
        json!({"transformation_id": "T-EPCIS-1", "inputs": [{"batch": h1, "quantity": 100}],
               "output": batch_args(&juice, "J1", 200), "event_time": t + 120, "location": "line 1"}),
    )
    .await;
    submit(
        &mut producer,
        "add_event",
        json!({"target": h1, "biz_step": "shipping", "destination": "Org2MSP",
               "event_time": t + 180, "event_time_zone_offset": "-05:00"}),
    )
    .await;

    // Export.
    let file = d.path().join("e1.epcis.json");
    let file_s = file.to_str().unwrap();
    net.cli(
        &["epcis", "export", "--batch", &h1, "--out", file_s],
        &net.conn(1, "producer"),
    );
    let doc = read_json(&file);
    check_with_gs1_tools(&file);
    assert_eq!(
        doc["@context"][0],
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    );
    assert_eq!(doc["type"], "EPCISDocument");
    assert_eq!(doc["schemaVersion"], "2.0");
    assert!(doc["creationDate"].as_str().unwrap().ends_with('Z'));
    let list = events(&doc);
    let kinds: Vec<&str> = list.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ObjectEvent",
            "ObjectEvent",
            "ObjectEvent",
            "TransformationEvent",
            "ObjectEvent"
        ],
        "{doc:#}"
    );
    let dl = format!("https://id.gs1.org/01/{loquat}/10/E1");
    assert_eq!(list[0]["action"], "ADD");
    assert_eq!(list[0]["bizStep"], "commissioning");
    assert_eq!(list[0]["quantityList"][0]["epcClass"], dl.as_str());
    let harvest = &list[1];
    assert_eq!(
        harvest["bizStep"],
        "https://qcss.dev/voc/bizstep/harvesting"
    );
    assert_eq!(harvest["eventTimeZoneOffset"], "+08:00");
    assert!(harvest["eventTime"].as_str().unwrap().ends_with("+08:00"));
    // GLN-based places as the canonical Digital Link (AI 414) ...
    assert_eq!(
        harvest["readPoint"],
        json!({"id": format!("https://id.gs1.org/414/{}", gs1("690123400001"))})
    );
    assert_eq!(
        harvest["certificationInfo"][0],
        format!("urn:qcss:sha256:{SHA}").as_str()
    );
    assert_eq!(harvest["qcss:data"]["brix"], 12.5);
    assert_eq!(list[2]["disposition"], "in_progress");
    // ... free text under the recording org, the text in qcss:name.
    assert_eq!(
        list[2]["bizLocation"],
        json!({"id": "urn:qcss:location:Org1MSP:cold%20room%202", "qcss:name": "cold room 2"})
    );
    let tr = &list[3];
    assert_eq!(tr["transformationID"], "urn:qcss:transformation:T-EPCIS-1");
    assert_eq!(
        tr["inputQuantityList"],
        json!([{"epcClass": dl, "quantity": 100, "uom": "KGM"}])
    );
    assert_eq!(
        tr["outputQuantityList"][0]["epcClass"],
        format!("https://id.gs1.org/01/{juice}/10/J1").as_str()
    );
    assert_eq!(tr["outputQuantityList"][0]["quantity"], 200);
    assert_eq!(tr["outputQuantityList"][0]["uom"], "KGM");
    assert_eq!(tr["readPoint"]["qcss:name"], "line 1");
    assert_eq!(tr["bizLocation"]["qcss:name"], "Suzhou orchard 3");

    // The output's export has the very same transformation: one event, one id.
    let file_j1 = d.path().join("j1.epcis.json");
    net.cli(
        &[
            "epcis",
            "export",
            "--batch",
            &format!("{juice}/J1"),
            "--out",
            file_j1.to_str().unwrap(),
        ],
        &net.conn(1, "producer"),
    );
    check_with_gs1_tools(&file_j1);
    let j1 = events(&read_json(&file_j1));
    let same: Vec<&Value> = j1
        .iter()
        .filter(|e| e["type"] == "TransformationEvent")
        .collect();
    assert_eq!(same.len(), 1, "{j1:#?}");
    assert_eq!(
        same[0], tr,
        "the transformation in the input's and the output's export"
    );
    assert_eq!(list[4]["bizStep"], "shipping");
    assert_eq!(
        list[4]["destinationList"][0]["destination"],
        "urn:qcss:msp:Org2MSP"
    );

    // The same batch again under a new lot; import the document into it.
    submit(
        &mut producer,
        "register_batch",
        batch_args(&loquat, "E1B", 500),
    )
    .await;
    let (ok, out, err) = net.cli_any(
        &["epcis", "import", file_s, "--batch", &h1b],
        &net.conn(1, "producer"),
    );
    eprintln!("import:\n{out}{err}");
    assert!(!ok, "the reused transformation must make the import fail");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("skipped: commissioning"), "{out}");
    for i in [1, 2, 4] {
        assert!(lines[i].contains("recorded: add_event tx "), "{out}");
    }
    assert!(
        lines[3].contains("refused:") && lines[3].contains("already recorded"),
        "{out}"
    );
    assert!(
        lines[5].contains("3 recorded, 1 refused, 1 skipped"),
        "{out}"
    );
    assert!(err.contains("1 of 5 event(s) refused"), "{err}");

    // Export the new lot: the same ObjectEvents.
    let file2 = d.path().join("e1b.epcis.json");
    net.cli(
        &[
            "epcis",
            "export",
            "--batch",
            &h1b,
            "--out",
            file2.to_str().unwrap(),
        ],
        &net.conn(1, "producer"),
    );
    let again = events(&read_json(&file2));
    let observed = |l: &[Value]| -> Vec<Value> {
        l.iter()
            .filter(|e| e["type"] == "ObjectEvent" && e["action"] == "OBSERVE")
            .map(comparable)
            .collect()
    };
    assert_eq!(observed(&again).len(), 3);
    assert_eq!(observed(&again), observed(&list));
    assert_eq!(
        again[1]["quantityList"][0]["epcClass"],
        format!("https://id.gs1.org/01/{loquat}/10/E1B").as_str()
    );

    // What the contract cannot express is skipped, not refused.
    let other = d.path().join("other.json");
    std::fs::write(
        &other,
        json!({"type": "EPCISDocument", "schemaVersion": "2.0", "epcisBody": {"eventList": [
            {"type": "AssociationEvent", "eventTime": "2025-06-01T00:00:00Z", "eventTimeZoneOffset": "+00:00"},
            {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "sensor_reporting",
             "eventTime": "2025-06-01T00:00:00Z", "eventTimeZoneOffset": "+00:00",
             "quantityList": [{"epcClass": format!("https://id.gs1.org/01/{loquat}/10/E1B")}],
             "sensorElementList": [{"sensorReport": [{"type": "gs1:Temperature", "value": 4.0, "uom": "CEL"}]}]}
        ]}})
        .to_string(),
    )
    .unwrap();
    let out = net.cli(
        &["epcis", "import", other.to_str().unwrap()],
        &net.conn(1, "producer"),
    );
    assert!(out.contains("event 1 (AssociationEvent): skipped"), "{out}");
    assert!(out.contains("skipped: sensor readings"), "{out}");
    assert!(out.contains("0 recorded, 0 refused, 2 skipped"), "{out}");
    eprintln!("done in {:?}", started.elapsed());
}
