use super::*;

fn redactor() -> Redactor {
    Redactor::new(Kinds::ALL, DEFAULT_MASK).unwrap()
}

/// The text after redaction (unchanged when nothing matched).
fn r(text: &str) -> String {
    redactor()
        .redact(text)
        .map_or_else(|| text.to_string(), |(s, _)| s)
}

fn filter(pairs: &[(&str, &str)]) -> Result<Redact, String> {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Redact::new(&Config::new(pairs))
}

/// The `set` edits of a verdict, as (path, text or JSON text).
fn sets(verdict: Verdict) -> Vec<(String, String)> {
    let Verdict::Edits(edits) = verdict else {
        panic!("expected edits, got {verdict:?}");
    };
    edits
        .into_iter()
        .map(|edit| match edit {
            logway_filter_sdk::Edit::Set((path, Value::Text(s))) => (path, s),
            logway_filter_sdk::Edit::Set((path, Value::Json(s))) => (path, format!("json:{s}")),
            other => panic!("unexpected edit {other:?}"),
        })
        .collect()
}

fn is_keep(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Keep)
}

// --- e-mail addresses ---

#[test]
fn masks_email_addresses() {
    assert_eq!(
        r("mail jane.doe+tag@example.co.uk now"),
        "mail [REDACTED] now"
    );
    assert_eq!(
        r("<bob@example.com>, carol_1@mail.example.org."),
        "<[REDACTED]>, [REDACTED]."
    );
    let (_, n) = redactor().redact("a@b.io and c@d.io").unwrap();
    assert_eq!(n, 2);
}

#[test]
fn leaves_non_emails() {
    for text in [
        "user@localhost",
        "@@@",
        "a@",
        "@example.com",
        "price 5 @ 3.00",
        "no at sign",
    ] {
        assert_eq!(r(text), text, "{text}");
    }
}

// --- IPv4 ---

#[test]
fn masks_ipv4_addresses() {
    assert_eq!(r("from 192.168.1.10 port 22"), "from [REDACTED] port 22");
    assert_eq!(r("connect 10.0.0.1:8080"), "connect [REDACTED]:8080");
    assert_eq!(r("peer=(8.8.8.8)"), "peer=([REDACTED])");
    assert_eq!(r("ended at 10.0.0.1."), "ended at [REDACTED].");
    assert_eq!(r("client:172.16.0.5"), "client:[REDACTED]");
    assert_eq!(
        r("0.0.0.0 and 255.255.255.255"),
        "[REDACTED] and [REDACTED]"
    );
    assert_eq!(r("padded 010.001.000.255"), "padded [REDACTED]");
}

#[test]
fn leaves_invalid_ipv4() {
    for text in [
        "999.1.1.1",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4.5",
        "v1.2.3.4",
        "1.2.3.4a",
        "1234.1.1.1",
        "1.1.1.1234",
        "x.1.2.3.4",
    ] {
        assert_eq!(r(text), text, "{text}");
    }
}

#[test]
fn validates_ipv4_in_code() {
    assert!(valid_ipv4("1.2.3.4"));
    assert!(valid_ipv4("255.255.255.255"));
    assert!(!valid_ipv4("999.1.1.1"));
    assert!(!valid_ipv4("1.2.3"));
    assert!(!valid_ipv4("1.2.3.4.5"));
    assert!(!valid_ipv4("1..3.4"));
    assert!(!valid_ipv4("1.2.3.+4"));
    assert!(!valid_ipv4("1.2.3.0004"));
    assert!(!valid_ipv4(""));
}

// --- IPv6 ---

#[test]
fn masks_ipv6_addresses() {
    assert_eq!(r("listening on ::1"), "listening on [REDACTED]");
    assert_eq!(r("via fe80::1%eth0 ok"), "via [REDACTED] ok");
    assert_eq!(r("via fe80::1%eth0."), "via [REDACTED].");
    assert_eq!(r("2001:0db8:85a3:0000:0000:8a2e:0370:7334"), "[REDACTED]");
    assert_eq!(
        r("from 2001:db8::8a2e:370:7334 port 22"),
        "from [REDACTED] port 22"
    );
    assert_eq!(r("url http://[::1]:443/x"), "url http://[[REDACTED]]:443/x");
    assert_eq!(
        r("mapped ::ffff:192.168.0.1 here"),
        "mapped [REDACTED] here"
    );
    assert_eq!(
        r("addr fe80::1: connection refused"),
        "addr [REDACTED]: connection refused"
    );
    assert_eq!(r("1:2:3:4:5:6:7:8"), "[REDACTED]");
    assert_eq!(r("1:2:3:4:5:6:7:8: done"), "[REDACTED]: done");
    let (_, n) = redactor().redact("::ffff:10.0.0.1").unwrap();
    assert_eq!(n, 1, "the IPv4 tail is part of the one address");
}

#[test]
fn leaves_non_ipv6() {
    for text in [
        "at 12:34:56",
        "std::io::Error",
        "db::add and a::b",
        "mac 00:1a:2b:3c:4d:5e",
        "a :: b",
        "1:2:3:4:5:6:7:8:9",
        "x::1",
        "fe80::1g",
        "::::::::::",
        "1::2::3",
    ] {
        assert_eq!(r(text), text, "{text}");
    }
}

#[test]
fn validates_ipv6_in_code() {
    assert!(valid_ipv6("::1"));
    assert!(valid_ipv6("fe80::1%eth0"));
    assert!(valid_ipv6("2001:db8:0:0:0:0:0:1"));
    assert!(valid_ipv6("::ffff:1.2.3.4"));
    assert!(!valid_ipv6("::"));
    assert!(!valid_ipv6("dead::beef"));
    assert!(!valid_ipv6("1:2:3"));
    assert!(!valid_ipv6("%eth0"));
    assert!(!valid_ipv6("12345::1"));
}

// --- payment cards ---

#[test]
fn luhn_check() {
    assert!(luhn(b"4111111111111111"));
    assert!(luhn(b"4111 1111 1111 1111"));
    assert!(luhn(b"378282246310005"));
    assert!(!luhn(b"4111111111111112"));
    assert!(!luhn(b""));
    assert!(!luhn(b"abc"));
}

#[test]
fn masks_card_numbers() {
    assert_eq!(r("card 4111 1111 1111 1111 ok"), "card [REDACTED] ok");
    assert_eq!(r("card 4111-1111-1111-1111."), "card [REDACTED].");
    assert_eq!(r("card=4111111111111111"), "card=[REDACTED]");
    assert_eq!(r("amex 3782 822463 10005"), "amex [REDACTED]");
    assert_eq!(
        r("mc 5555555555554444, disc 6011111111111117"),
        "mc [REDACTED], disc [REDACTED]"
    );
    assert_eq!(r("13 digits 4222222222222"), "13 digits [REDACTED]");
    assert_eq!(r("19 digits 4000000000000000006"), "19 digits [REDACTED]");
    assert_eq!(r("\"pan\":\"4111111111111111\""), "\"pan\":\"[REDACTED]\"");
    // A date written before the card does not hide it.
    assert_eq!(r("2024-01-15 4111 1111 1111 1111"), "2024-01-15 [REDACTED]");
    // A card followed by another number in the same run.
    assert_eq!(r("4111 1111 1111 1111 12"), "[REDACTED] 12");
}

#[test]
fn leaves_non_card_numbers() {
    for text in [
        "card 4111 1111 1111 1112",          // fails Luhn
        "4111111111111112",                  // fails Luhn
        "411111111111",                      // 12 digits
        "41111111111111111111",              // 20 digits
        "1700000000004",                     // Unix ms, Luhn-valid, starts with 1
        "latency 0.4111111111111111",        // a float's fraction
        "id4111111111111111",                // part of a word
        "4111111111111111abc",               // part of a word
        "4111 1111-1111 1111",               // mixed separators
        "4111  1111  1111  1111",            // double spaces: four short numbers
        "phone +1 555-123-4567, 2024-01-15", // short groups
    ] {
        assert_eq!(r(text), text, "{text}");
    }
}

// --- tokens ---

#[test]
fn masks_bearer_tokens_keeping_the_word() {
    assert_eq!(
        r("Authorization: Bearer abc123.def-456_ghi~+/="),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(r("bearer\tXyZ987 next"), "bearer\t[REDACTED] next");
    assert_eq!(r("BEARER mF_9.B5f-4.1JqM."), "BEARER [REDACTED].");
    assert_eq!(
        r("{\"authorization\":\"Bearer s3cr3t\"}"),
        "{\"authorization\":\"Bearer [REDACTED]\"}"
    );
}

#[test]
fn leaves_bearer_prose() {
    for text in [
        "Bearer token expired",
        "missing bearer",
        "Bearer ",
        "NotBearer abc123",
        "bearer_abc123",
    ] {
        assert_eq!(r(text), text, "{text}");
    }
}

const JWT_SAMPLE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn masks_jwts() {
    assert_eq!(r(&format!("token={JWT_SAMPLE} ok")), "token=[REDACTED] ok");
    assert_eq!(r("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."), "[REDACTED]");
    let (masked, n) = redactor()
        .redact(&format!("Authorization: Bearer {JWT_SAMPLE}"))
        .unwrap();
    assert_eq!(masked, "Authorization: Bearer [REDACTED]");
    assert_eq!(n, 1, "bearer and JWT matches merge");
    // Not a JWT: the second part must also be a JSON object.
    assert_eq!(
        r("eyJhbGciOiJIUzI1NiJ9.abc.def"),
        "eyJhbGciOiJIUzI1NiJ9.abc.def"
    );
    assert_eq!(r(&format!("x{JWT_SAMPLE}")), format!("x{JWT_SAMPLE}"));
}

// --- switches and mask ---

#[test]
fn switches_turn_kinds_off() {
    let text = "a@b.io 10.0.0.1 ::1 4111111111111111 Bearer abc123";
    let only = |kinds: Kinds| Redactor::new(kinds, "#").unwrap().redact(text).unwrap().0;
    let none = Kinds {
        emails: false,
        ips: false,
        cards: false,
        tokens: false,
    };
    assert_eq!(
        only(Kinds {
            emails: true,
            ..none
        }),
        "# 10.0.0.1 ::1 4111111111111111 Bearer abc123"
    );
    assert_eq!(
        only(Kinds { ips: true, ..none }),
        "a@b.io # # 4111111111111111 Bearer abc123"
    );
    assert_eq!(
        only(Kinds {
            cards: true,
            ..none
        }),
        "a@b.io 10.0.0.1 ::1 # Bearer abc123"
    );
    assert_eq!(
        only(Kinds {
            tokens: true,
            ..none
        }),
        "a@b.io 10.0.0.1 ::1 4111111111111111 Bearer #"
    );
    assert!(Redactor::new(none, "#").unwrap().redact(text).is_none());
    assert_eq!(only(Kinds::ALL), "# # # # Bearer #");
}

#[test]
fn keeps_text_without_matches_unallocated() {
    assert!(redactor().redact("GET /index.html 200 in 12ms").is_none());
    assert!(redactor().redact("").is_none());
}

// --- the filter ---

#[test]
fn config_defaults_and_errors() {
    let f = filter(&[]).unwrap();
    assert_eq!(f.fields, ["message"]);
    assert!(f.text_message);
    let f = filter(&[("fields", "message, user.email,message"), ("emails", "no")]).unwrap();
    assert_eq!(f.fields, ["message", "user.email"]);
    assert!(f.redactor.email.is_none());
    assert!(f.redactor.ipv4.is_some());

    let err = filter(&[("emails", "maybe")]).err().unwrap();
    assert!(err.contains("`emails`"), "{err}");
    let err = filter(&[("cards", "")]).err().unwrap();
    assert!(err.contains("`cards`"), "{err}");
    let err = filter(&[("fields", "user..email")]).err().unwrap();
    assert!(err.contains("`fields`"), "{err}");
    let err = filter(&[("fields", " , ")]).err().unwrap();
    assert!(err.contains("`fields`"), "{err}");
}

#[test]
fn text_event_line_is_the_message() {
    let f = filter(&[]).unwrap();
    let (verdict, n) = f.redact_event(&Event::text("login jane@example.com from 10.1.2.3"));
    assert_eq!(
        sets(verdict),
        [(
            "message".to_string(),
            "login [REDACTED] from [REDACTED]".to_string()
        )]
    );
    assert_eq!(n, 2);

    let (verdict, n) = f.redact_event(&Event::text("nothing to hide"));
    assert!(is_keep(&verdict));
    assert_eq!(n, 0);

    // Fields other than `message` do not apply to a text line.
    let f = filter(&[("fields", "user.email")]).unwrap();
    assert!(is_keep(&f.redact_event(&Event::text("jane@example.com")).0));
}

#[test]
fn json_event_sets_only_changed_fields() {
    let f = filter(&[
        ("fields", "message,user.email,client.ip,user.name"),
        ("mask", "***"),
    ])
    .unwrap();
    let event = Event::json_text(
        r#"{"message":"paid with 4111 1111 1111 1111","user":{"email":"jane@example.com","name":"Jane"},
            "client":{"ip":"2001:db8::1"},"other":"bob@example.com"}"#,
    );
    let (verdict, n) = f.redact_event(&event);
    assert_eq!(n, 3);
    assert_eq!(
        sets(verdict),
        [
            ("message".to_string(), "paid with ***".to_string()),
            ("user.email".to_string(), "***".to_string()),
            ("client.ip".to_string(), "***".to_string()),
        ]
    );
}

#[test]
fn json_event_without_matches_is_kept() {
    let f = filter(&[("fields", "message,user.email")]).unwrap();
    for raw in [
        r#"{"message":"all good","user":{"email":"none"}}"#,
        r#"{"other":"jane@example.com"}"#,
        r#"{"user":"jane@example.com"}"#, // `user.email` goes through a string
        r#"{"message":null,"user":{"email":true}}"#,
        r#"{}"#,
    ] {
        assert!(is_keep(&f.redact_event(&Event::json_text(raw)).0), "{raw}");
    }
}

#[test]
fn json_message_falls_back_to_msg() {
    let f = filter(&[]).unwrap();
    let (verdict, _) = f.redact_event(&Event::json_text(r#"{"msg":"from 10.0.0.1"}"#));
    assert_eq!(
        sets(verdict),
        [("msg".to_string(), "from [REDACTED]".to_string())]
    );
}

#[test]
fn json_numbers_and_objects() {
    let f = filter(&[("fields", "card,headers,amount")]).unwrap();
    let event = Event::json_text(
        r#"{"card":4111111111111111,"amount":4111111111111112,
            "headers":{"authorization":"Bearer abc123","x":["ok","a@b.io",5],"n":1.5}}"#,
    );
    let (verdict, n) = f.redact_event(&event);
    assert_eq!(n, 3);
    let sets = sets(verdict);
    assert_eq!(sets[0], ("card".to_string(), "[REDACTED]".to_string()));
    assert_eq!(sets[1].0, "headers");
    let headers: Json = serde_json::from_str(sets[1].1.strip_prefix("json:").unwrap()).unwrap();
    assert_eq!(
        headers,
        serde_json::json!({"authorization":"Bearer [REDACTED]","x":["ok","[REDACTED]",5],"n":1.5})
    );
    assert_eq!(sets.len(), 2, "the Luhn-failing amount is left alone");
}

#[test]
fn process_batch_answers_one_verdict_per_event() {
    let mut f = filter(&[]).unwrap();
    let events = [
        Event::text("a@b.io"),
        Event::text("fine"),
        Event::json_text(r#"{"message":"10.0.0.1"}"#),
        Event::json_text("not json"),
    ];
    let verdicts = f.process_batch(&BatchContext::for_test("app"), &events);
    assert_eq!(verdicts.len(), 4);
    assert!(matches!(verdicts[0], Verdict::Edits(_)));
    assert!(is_keep(&verdicts[1]));
    assert!(matches!(verdicts[2], Verdict::Edits(_)));
    assert!(is_keep(&verdicts[3]));
    assert!(is_keep(
        &f.process(&BatchContext::for_test("app"), &Event::text("x"))
    ));
}

// --- garbage ---

#[test]
fn garbage_events_are_kept_without_panicking() {
    let f = filter(&[("fields", "message,a.b.c")]).unwrap();
    let mut events = vec![
        Event::json_text(""),
        Event::json_text("{"),
        Event::json_text("[1,2,3]"),
        Event::json_text("\"message\""),
        Event::json_text(r#"{"a":{"b":[1,2]}}"#),
        Event::json_text(r#"{"a":{"b":{"c":{"d":"x@y.io"}}}}"#),
    ];
    let mut bad = Event::text("");
    bad.raw = vec![0xff, 0xfe, b'a', b'@', b'b', b'.', b'i', b'o'];
    events.push(bad.clone());
    bad.format = EventFormat::Json;
    events.push(bad);
    for event in &events {
        let _ = f.redact_event(event);
    }
    // Deeply nested JSON stays within serde_json's recursion limit.
    let deep = format!("{}{}", "{\"a\":".repeat(200), "1");
    assert!(is_keep(&f.redact_event(&Event::json_text(&deep)).0));
}

/// A fixed xorshift, so the fuzz is the same on every run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_text_never_panics() {
    let alphabet: Vec<char> = "0123456789abcdefxyzABEReyJ:.@-_ %[]/=+~\t,é€😀"
        .chars()
        .collect();
    let redactor = redactor();
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let len = (xorshift(&mut state) % 80) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize])
            .collect();
        if let Some((masked, n)) = redactor.redact(&text) {
            assert!(n > 0);
            assert!(masked.contains(DEFAULT_MASK), "{text:?} -> {masked:?}");
        }
    }
}

#[test]
fn long_inputs_are_fine() {
    let redactor = redactor();
    let digits = "4".repeat(100_000);
    assert!(redactor.redact(&digits).is_none());
    let groups = "4111 ".repeat(20_000);
    let _ = redactor.redact(&groups);
    let colons = ":".repeat(100_000);
    assert!(redactor.redact(&colons).is_none());
    let dots = "1.".repeat(50_000);
    assert!(redactor.redact(&dots).is_none());
    let many = "a@b.io ".repeat(10_000);
    assert_eq!(redactor.redact(&many).unwrap().1, 10_000);
}
