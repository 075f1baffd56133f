//! An event's own time: reading the forms services send, and the one form
//! stored events carry (RFC 3339, UTC).

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// RFC 3339 in UTC, as every stored event's times are written.
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Reads an event's own time: RFC 3339, "YYYY-MM-DD HH:MM:SS[.f]" (UTC),
/// or Unix epoch seconds / milliseconds / microseconds / nanoseconds.
pub fn parse_event_time(v: &Value) -> Option<OffsetDateTime> {
    match v {
        Value::String(s) => parse_time_text(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_guess(i as i128, 0)
            } else {
                let f = n.as_f64()?;
                let secs = f.trunc();
                epoch_guess(secs as i128, ((f - secs) * 1e9) as i128)
            }
        }
        _ => None,
    }
}

pub fn parse_time_text(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let fmt_space = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let fmt_t = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    for fmt in [fmt_space, fmt_t] {
        if let Ok(t) = PrimitiveDateTime::parse(s, fmt) {
            return Some(t.assume_utc());
        }
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return epoch_guess(s.parse().ok()?, 0);
    }
    None
}

/// Tells seconds from milli/micro/nanoseconds by magnitude (as Vector and
/// Fluent Bit do): anything below 10^11 is seconds (until year 5138).
fn epoch_guess(n: i128, extra_nanos: i128) -> Option<OffsetDateTime> {
    let nanos = match n.unsigned_abs() {
        0..100_000_000_000 => n * 1_000_000_000 + extra_nanos,
        100_000_000_000..100_000_000_000_000 => n * 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => n * 1_000,
        _ => n,
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Epoch seconds with a fraction (HEC's `time`, GELF's `timestamp`), as a
/// number or a string, read as decimal text (no float rounding: `.25`
/// stays 250 ms), formatted as an event time.
pub fn epoch_seconds(t: &Value) -> Option<String> {
    let text = match t {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let (secs, frac) = text.split_once('.').unwrap_or((&text, ""));
    let nanos = match (
        secs.parse::<i64>(),
        frac.bytes().all(|b| b.is_ascii_digit()),
    ) {
        (Ok(secs), true) => {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            let frac = digits.parse::<i128>().ok()?;
            let whole = i128::from(secs) * 1_000_000_000;
            if secs < 0 || secs == 0 && text.starts_with('-') {
                whole - frac
            } else {
                whole + frac
            }
        }
        // An exponent (`1.7e9`): as a float.
        _ => (text.parse::<f64>().ok()? * 1e9).round() as i128,
    };
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    Some(format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        let t = |s: &str| parse_time_text(s).map(format_time);
        assert_eq!(
            t("2024-01-02T03:04:05+01:00").unwrap(),
            "2024-01-02T02:04:05Z"
        );
        assert_eq!(
            t("2024-01-02 03:04:05.5").unwrap(),
            "2024-01-02T03:04:05.5Z"
        );
        assert_eq!(t("1700000000").unwrap(), "2023-11-14T22:13:20Z");
        assert!(t("not a time").is_none());
    }
}
