//! Syslog frames → pipeline items. Without filters each message becomes
//! its stored event straight from the parsed header ([`EventBuilder`]: no
//! JSON map on the way); with filters, the JSON object an HTTP client
//! would have sent for it ([`message_object`]), which the chain sees and
//! the pipeline turns into events like any other.

use logway_syslog::Frame;
use time::OffsetDateTime;

use crate::event::{self, EventContext, Promoted};
use crate::pipeline::Item;

/// Builds the stored events of syslog messages. Consecutive messages often
/// share a timestamp (RFC 3164 has whole seconds), so the last formatted
/// one is kept.
pub struct EventBuilder<'c> {
    ctx: &'c EventContext<'c>,
    now: OffsetDateTime,
    last_time: Option<(OffsetDateTime, String)>,
}

impl<'c> EventBuilder<'c> {
    pub fn new(ctx: &'c EventContext<'c>) -> Self {
        EventBuilder {
            ctx,
            now: ctx.received,
            last_time: None,
        }
    }

    /// The stored event of one message (see `logway_syslog` for the fields).
    pub fn event(&mut self, text: &str) -> Vec<u8> {
        let m = logway_syslog::parse(text, self.now);
        if let Some(t) = m.timestamp
            && self.last_time.as_ref().is_none_or(|(last, _)| *last != t)
        {
            self.last_time = Some((t, event::format_time(t)));
        }
        let timestamp = m
            .timestamp
            .and(self.last_time.as_ref().map(|(_, text)| text.as_str()));
        let promoted = Promoted {
            timestamp,
            level: m.level,
            service: m.service,
            host: m.host,
            message: m.message,
        };
        event::from_parts(promoted, m.fields, self.ctx)
    }
}

/// What one frame is: a message's text, or a rejected event's bytes (its
/// head), reason and metric label.
pub enum Framed<'a> {
    Text(&'a str),
    Rejected(&'a [u8], String, &'static str),
}

pub fn framed(frame: &Frame, max: usize) -> Framed<'_> {
    match frame {
        Frame::Message(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Framed::Text(text),
            Err(_) => Framed::Rejected(bytes, "syslog message is not UTF-8".into(), "invalid_utf8"),
        },
        Frame::Truncated(head) => Framed::Rejected(
            head,
            "the connection closed inside an octet-counted frame".into(),
            "truncated_frame",
        ),
        Frame::Oversize(head, len) => Framed::Rejected(
            head,
            format!("syslog message of {len} bytes is over syslog.max_message_bytes ({max})"),
            "line_too_long",
        ),
    }
}

/// The items of a batch of frames, numbered from 1: stored events built
/// here (`prebuilt`, for a listener without filters), else JSON objects.
pub fn items<'f>(
    frames: &'f [Frame],
    max: usize,
    ctx: &EventContext,
    prebuilt: bool,
) -> Vec<(usize, Item<'f>)> {
    let mut builder = EventBuilder::new(ctx);
    frames
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let item = match framed(frame, max) {
                Framed::Text(text) if prebuilt => Item::Event(builder.event(text)),
                Framed::Text(text) => Item::Object(message_object(text, ctx.received), None),
                Framed::Rejected(raw, reason, kind) => Item::Bad {
                    raw: raw.into(),
                    reason,
                    kind,
                },
            };
            (i + 1, item)
        })
        .collect()
}

/// A parsed message as the JSON object a filter sees.
pub fn message_object(
    text: &str,
    now: OffsetDateTime,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let m = logway_syslog::parse(text, now);
    let mut object = match serde_json::to_value(&m.fields) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            object.insert(key.to_string(), Value::String(v.to_string()));
        }
    };
    put("timestamp", m.timestamp.map(event::format_time).as_deref());
    put("host", m.host);
    put("service", m.service);
    put("level", m.level);
    put("message", Some(m.message));
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn to_event(text: &str) -> Value {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        serde_json::from_slice(&EventBuilder::new(&ctx).event(text)).unwrap()
    }

    #[test]
    fn rfc5424_and_rfc3164_fields_land_in_the_event_model() {
        let e = to_event(
            r#"<165>1 2026-11-21T10:00:00.123Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App"] payment failed"#,
        );
        assert_eq!(e["timestamp"], "2026-11-21T10:00:00.123Z");
        assert_eq!(e["host"], "web-1");
        assert_eq!(e["service"], "checkout");
        assert_eq!(e["level"], "notice");
        assert_eq!(e["message"], "payment failed");
        assert_eq!(e["fields"]["procid"], 4242);
        assert_eq!(e["fields"]["msgid"], "ID47");
        assert_eq!(e["fields"]["facility"], "local4");
        assert_eq!(e["fields"]["sd"]["exampleSDID@32473"]["iut"], "3");
        let e = to_event(
            "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        );
        assert_eq!(e["host"], "LabSZ");
        assert_eq!(e["service"], "sshd");
        assert_eq!(e["fields"]["procid"], 24200);
        assert_eq!(e["level"], "info");
        assert_eq!(e["message"], "Invalid user webmaster from 173.234.31.186");
    }

    #[test]
    fn consecutive_messages_with_one_timestamp_share_its_text_but_not_others() {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        let mut b = EventBuilder::new(&ctx);
        let times: Vec<String> = [
            "<13>1 2026-11-21T10:00:00Z h a - - - one",
            "<13>1 2026-11-21T10:00:00Z h a - - - two",
            "<13>1 2026-11-21T10:00:01Z h a - - - three",
            "<13>no time at all",
        ]
        .iter()
        .map(|m| {
            let e: Value = serde_json::from_slice(&b.event(m)).unwrap();
            e["timestamp"].as_str().unwrap().to_string()
        })
        .collect();
        assert_eq!(times[0], "2026-11-21T10:00:00Z");
        assert_eq!(times[1], "2026-11-21T10:00:00Z");
        assert_eq!(times[2], "2026-11-21T10:00:01Z");
        assert_eq!(times[3], ctx.received_text);
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "",
            "<",
            "<999>",
            "<13>1",
            "12345678901234567890 x",
            "\u{0}\u{1}",
            "<13>1 - - - - - -",
        ] {
            let e = to_event(input);
            assert!(e["id"].is_string());
        }
    }
}
