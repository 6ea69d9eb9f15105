//! Calendar arithmetic for showing and reading ledger times (Unix seconds,
//! as contracts store them) without a time-zone database: UTC or a fixed
//! `±hh:mm` offset, as EPCIS events carry.

/// A moment as a calendar date and wall-clock time in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
    /// The offset as given (`+08:00`, `Z`), or `UTC` when none or invalid.
    pub zone: String,
}

/// Unix seconds `t` in the zone `offset` (`±hh:mm` or `Z`); UTC when the
/// offset is absent or malformed.
pub fn local_time(t: i64, offset: Option<&str>) -> LocalTime {
    let (shift, zone) = match offset.and_then(|o| parse_offset(o).map(|s| (s, o))) {
        Some((s, o)) => (s, o.to_owned()),
        None => (0, "UTC".to_owned()),
    };
    let t = t.saturating_add(shift);
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    LocalTime {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
        zone,
    }
}

/// `±hh:mm` (hours ≤ 23, minutes ≤ 59) or `Z` → seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i64 = s[1..3].parse().ok()?;
    let m: i64 = s[4..6].parse().ok()?;
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_zones_shift() {
        for days in [-719_468, -1, 0, 1, 10_957, 20_781, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2026-11-24 22:10:05 UTC.
        let t = 1_795_558_205;
        let utc = local_time(t, None);
        assert_eq!(
            (
                utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second
            ),
            (2026, 11, 24, 22, 10, 5)
        );
        assert_eq!(utc.zone, "UTC");
        let cst = local_time(t, Some("+08:00"));
        assert_eq!((cst.day, cst.hour, cst.zone.as_str()), (25, 6, "+08:00"));
        assert_eq!(local_time(t, Some("Z")).zone, "Z");
        assert_eq!(local_time(t, Some("8h")).zone, "UTC");
        assert_eq!(parse_offset("-05:30"), Some(-19_800));
        assert_eq!(parse_offset("+24:00"), None);
        assert_eq!(parse_offset("+0800"), None);
    }
}
