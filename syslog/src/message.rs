//! One syslog message → the parts of a Logway event.
//!
//! | syslog | event |
//! |---|---|
//! | TIMESTAMP | `timestamp` |
//! | HOSTNAME | `host` |
//! | APP-NAME (RFC 3164: the tag) | `service` |
//! | severity of PRI | `level` (`emerg` … `debug`) |
//! | MSG | `message` |
//! | facility of PRI | `fields.facility` |
//! | PROCID (RFC 3164: `tag[pid]`) | `fields.procid` (a number when numeric) |
//! | MSGID | `fields.msgid` |
//! | STRUCTURED-DATA | `fields.sd.{SD-ID}.{PARAM-NAME}` (escapes removed) |
//!
//! An SD-ID or a PARAM-NAME that appears twice keeps its last value, as a
//! JSON object can hold a name once. Anything that does not parse as either
//! RFC is kept whole as the message: parsing never fails.

use chrono::{DateTime, FixedOffset, Local};
use serde::ser::{Serialize, SerializeMap, Serializer};
use syslog_loose::{IncompleteDate, ProcId, StructuredElement, Variant};
use time::{Month, OffsetDateTime};

/// The promoted parts of a message, borrowed from its text.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub timestamp: Option<OffsetDateTime>,
    pub host: Option<&'a str>,
    pub service: Option<&'a str>,
    pub level: Option<&'static str>,
    pub message: &'a str,
    pub fields: Fields<'a>,
}

/// The rest of a message, serialized as the event's `fields` object.
#[derive(Debug)]
pub struct Fields<'a> {
    pub facility: Option<&'static str>,
    pub procid: Option<ProcId<&'a str>>,
    pub msgid: Option<&'a str>,
    pub structured_data: Vec<StructuredElement<&'a str>>,
}

impl Fields<'_> {
    pub fn is_empty(&self) -> bool {
        self.facility.is_none()
            && self.procid.is_none()
            && self.msgid.is_none()
            && self.structured_data.is_empty()
    }
}

/// Parses one message. `now` gives the year of an RFC 3164 timestamp,
/// which has none: the current one, or the one before when the month is
/// more than one ahead of now (a December message read in January), or the
/// next when a January message arrives in December. An RFC 3164 time is
/// read in the gateway's local time zone, as `syslog_loose` and rsyslog do.
pub fn parse(text: &str, now: OffsetDateTime) -> Parsed<'_> {
    let year = move |(month, ..): IncompleteDate| {
        let this = now.month() as u32;
        if month > this + 1 {
            now.year() - 1
        } else if this == Month::December as u32 && month == 1 {
            now.year() + 1
        } else {
            now.year()
        }
    };
    let m = syslog_loose::parse_message_with_year_tz::<_, Local>(text, year, None, Variant::Either);
    Parsed {
        timestamp: m.timestamp.and_then(to_time),
        host: m.hostname,
        service: m.appname,
        level: m.severity.map(|s| s.as_str()),
        message: m.msg,
        fields: Fields {
            facility: m.facility.map(|f| f.as_str()),
            procid: m.procid,
            msgid: m.msgid,
            structured_data: m.structured_data,
        },
    }
}

fn to_time(t: DateTime<FixedOffset>) -> Option<OffsetDateTime> {
    let secs = OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()?;
    Some(secs + time::Duration::nanoseconds(t.timestamp_subsec_nanos().into()))
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(f) = self.facility {
            map.serialize_entry("facility", f)?;
        }
        match &self.procid {
            Some(ProcId::PID(pid)) => map.serialize_entry("procid", pid)?,
            Some(ProcId::Name(name)) => map.serialize_entry("procid", name)?,
            None => {}
        }
        if let Some(id) = self.msgid {
            map.serialize_entry("msgid", id)?;
        }
        if !self.structured_data.is_empty() {
            map.serialize_entry("sd", &Sd(&self.structured_data))?;
        }
        map.end()
    }
}

struct Sd<'e, 'a>(&'e [StructuredElement<&'a str>]);
struct Params<'e, 'a>(&'e StructuredElement<&'a str>);

impl Serialize for Sd<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (i, e) in self.0.iter().enumerate() {
            // The last element with this id wins.
            if !self.0[i + 1..].iter().any(|later| later.id == e.id) {
                map.serialize_entry(e.id, &Params(e))?;
            }
        }
        map.end()
    }
}

impl Serialize for Params<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let params = &self.0.params;
        let mut map = s.serialize_map(None)?;
        for (i, (name, value)) in self.0.params().enumerate() {
            if !params[i + 1..].iter().any(|(later, _)| later == name) {
                map.serialize_entry(*name, &value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-21 10:00 UTC)
    }

    #[test]
    fn rfc5424_parts_and_structured_data() {
        let p = parse(
            r#"<165>1 2026-11-21T10:00:00.123Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App \"x\""][a b="1"][a b="2" b="3"] payment failed"#,
            now(),
        );
        assert_eq!(
            p.timestamp,
            Some(time::macros::datetime!(2026-11-21 10:00:00.123 UTC))
        );
        assert_eq!(p.host, Some("web-1"));
        assert_eq!(p.service, Some("checkout"));
        assert_eq!(p.level, Some("notice"));
        assert_eq!(p.message, "payment failed");
        let fields: Value = serde_json::to_value(&p.fields).unwrap();
        assert_eq!(
            fields,
            json!({"facility": "local4", "procid": 4242, "msgid": "ID47",
                   "sd": {"exampleSDID@32473": {"iut": "3", "eventSource": "App \"x\""},
                          "a": {"b": "3"}}})
        );
    }

    #[test]
    fn rfc3164_parts_and_the_missing_year() {
        let p = parse(
            "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
            now(),
        );
        assert_eq!(p.host, Some("LabSZ"));
        assert_eq!(p.service, Some("sshd"));
        assert_eq!(p.level, Some("info"));
        assert_eq!(p.message, "Invalid user webmaster from 173.234.31.186");
        assert_eq!(serde_json::to_value(&p.fields).unwrap()["procid"], 24200);
        // November now, a December message: a month ahead is this year's.
        assert_eq!(p.timestamp.unwrap().year(), 2026);
        let january = time::macros::datetime!(2027-01-05 10:00 UTC);
        let p = parse("<38>Dec 10 06:55:46 h app: x", january);
        assert_eq!(p.timestamp.unwrap().year(), 2026);
        let p = parse("<38>Oct 10 06:55:46 h app: x", now());
        assert_eq!(p.timestamp.unwrap().year(), 2026);
        let p = parse("<38>Nov 21 09:00:00 h app: x", now());
        assert_eq!(p.timestamp.unwrap().year(), 2026);
        let december = time::macros::datetime!(2026-12-31 23:59 UTC);
        let p = parse("<38>Jan  1 00:00:10 h app: x", december);
        assert_eq!(p.timestamp.unwrap().year(), 2027);
    }

    #[test]
    fn anything_else_is_kept_whole_as_the_message() {
        for text in ["", "<", "<999>", "hello world", "\u{0}\u{1}"] {
            let p = parse(text, now());
            assert!(text.contains(p.message), "{text:?} → {:?}", p.message);
        }
    }
}
