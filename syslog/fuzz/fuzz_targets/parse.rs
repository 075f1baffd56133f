//! The parser on any text: it never panics, the message is a part of the
//! input, and the fields serialize to a JSON object that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    let parsed = logway_syslog::parse(text, now);
    assert!(text.contains(parsed.message));
    let json = serde_json::to_vec(&parsed.fields).unwrap();
    let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert!(back.is_object());
    if let Some(host) = parsed.host {
        assert!(text.contains(host));
    }
});
