//! The filter as the gateway calls it: fields set, failures marked,
//! one verdict per event.

use super::*;

#[test]
fn filter_sets_the_fields() {
    let f = filter(&[]).unwrap();
    let received = ms(2026, 12, 20, 0, 0, 0);
    let fields = sets(f.verdict(&ctx_at(received), &Event::text(SAMPLE)));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "syslog_time",
            "host",
            "process",
            "pid",
            "message",
            "user",
            "source_ip"
        ]
    );
    assert_eq!(text(&fields, "timestamp"), Some("2026-12-10T06:55:46Z"));
    assert_eq!(int(&fields, "pid"), Some(24200));

    let line = "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2";
    let json = serde_json::json!({"message": line, "service": "auth"}).to_string();
    let fields = sets(f.verdict(&ctx_at(received), &Event::json_text(&json)));
    assert_eq!(text(&fields, "user"), Some("webmaster"));
    assert_eq!(int(&fields, "source_port"), Some(38926));
    assert_eq!(
        text(&fields, "message"),
        Some("Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2")
    );
    let fields = sets(f.verdict(
        &ctx_at(received),
        &Event::text("Dec 10 06:55:46 LabSZ sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=gw.example.org"),
    ));
    assert_eq!(text(&fields, "source_host"), Some("gw.example.org"));
    assert_eq!(text(&fields, "source_ip"), None);

    // A configured year wins.
    let f = filter(&[("year", " 2017 ")]).unwrap();
    let fields = sets(f.verdict(&ctx_at(received), &Event::text(SAMPLE)));
    assert_eq!(text(&fields, "timestamp"), Some("2017-12-10T06:55:46Z"));
    // A day the configured year lacks: the rest is still set.
    let fields = sets(f.verdict(
        &ctx_at(received),
        &Event::text("Feb 29 00:00:00 h sshd[1]: x"),
    ));
    assert_eq!(
        text(&fields, "parse_error"),
        Some("openssh: the day does not exist in the configured year")
    );
    assert_eq!(text(&fields, "timestamp"), None);
    assert_eq!(text(&fields, "message"), Some("x"));
}

#[test]
fn filter_marks_what_it_cannot_parse() {
    let f = filter(&[]).unwrap();
    let ctx = ctx_at(0);
    let cases = [
        (
            Event::text("GET / HTTP/1.1"),
            "openssh: the line does not start with `Mmm dd hh:mm:ss`",
        ),
        (Event::text(""), "openssh: empty line"),
        (
            Event::json_text(r#"{"level":"info"}"#),
            "openssh: no string `message` field",
        ),
        (
            Event::json_text(r#"{"message":["a"]}"#),
            "openssh: no string `message` field",
        ),
        (Event::json_text("{"), "openssh: no string `message` field"),
        (
            Event::json_text(r#"{"message":"Invalid user x from 192.0.2.1"}"#),
            "openssh: the line does not start with a month name",
        ),
        (
            Event {
                raw: vec![b'D', 0xff, 0xfe],
                ..Event::text("")
            },
            "openssh: the line is not UTF-8",
        ),
    ];
    for (event, expected) in cases {
        let fields = sets(f.verdict(&ctx, &event));
        assert_eq!(fields.len(), 1, "only parse_error is set: {fields:?}");
        assert_eq!(text(&fields, "parse_error"), Some(expected));
    }
}

/// What the gateway's syslog listener stores: the header already split off.
#[test]
fn filter_reads_messages_the_syslog_listener_already_split() {
    let f = filter(&[]).unwrap();
    let ctx = ctx_at(0);
    let listener_event = |message: &str| {
        Event {
        promoted: Promoted {
            service: Some("sshd".into()),
            host: Some("LabSZ".into()),
            ..Promoted::default()
        },
        ..Event::json_text(
            &serde_json::json!({"host": "LabSZ", "service": "sshd", "message": message, "fields": {"procid": 24200}})
                .to_string(),
        )
    }
    };
    let fields = sets(f.verdict(
        &ctx,
        &listener_event("Invalid user webmaster from 173.234.31.186"),
    ));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["user", "source_ip"]);
    assert!(matches!(
        f.verdict(
            &ctx,
            &listener_event("pam_unix(sshd:auth): check pass; user unknown")
        ),
        Verdict::Keep
    ));
}

#[test]
fn filter_trait_answers_one_verdict_per_event_and_checks_config() {
    let mut f = filter(&[("year", "2017")]).unwrap();
    let events = [
        Event::text(SAMPLE),
        Event::text("junk"),
        Event::text(SAMPLE),
    ];
    assert_eq!(f.process_batch(&ctx_at(0), &events).len(), 3);

    for (pairs, needle) in [
        (&[("yaer", "2017")][..], "`yaer`"),
        (&[("year", "twenty")][..], "`year`"),
        (&[("year", "0")][..], "`year`"),
        (&[("year", "10000")][..], "`year`"),
    ] {
        let err = filter(pairs).err().unwrap();
        assert!(err.contains(needle), "{err}");
    }
}
