//! The parser on other messages, header variants, years and garbage.

use super::*;

#[test]
fn newer_and_other_sshd_messages() {
    for (message, expected) in [
        (
            "Accepted publickey for ops from 192.0.2.7 port 50522 ssh2: ED25519 SHA256:abc/def",
            d(Some("ops"), Some("192.0.2.7"), None, Some(50522)),
        ),
        (
            "Failed password for invalid user admin from 2001:db8::7 port 40000 ssh2",
            d(Some("admin"), Some("2001:db8::7"), None, Some(40000)),
        ),
        (
            "Invalid user test from 192.0.2.9 port 51234",
            d(Some("test"), Some("192.0.2.9"), None, Some(51234)),
        ),
        // A user name with spaces, and one that is empty.
        (
            "Invalid user a from b from 192.0.2.9",
            d(Some("a from b"), Some("192.0.2.9"), None, None),
        ),
        (
            "Invalid user  from 192.0.2.9",
            d(None, Some("192.0.2.9"), None, None),
        ),
        (
            "Connection closed by authenticating user root 192.0.2.1 port 22 [preauth]",
            d(Some("root"), Some("192.0.2.1"), None, Some(22)),
        ),
        (
            "Connection closed by invalid user oracle 192.0.2.1 port 4444 [preauth]",
            d(Some("oracle"), Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Connection closed by 192.0.2.1 port 4444 [preauth]",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Connection closed by UNKNOWN port 65535 [preauth]",
            d(None, None, None, Some(65535)),
        ),
        (
            "Connection reset by 192.0.2.1 port 4444 [preauth]",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Received disconnect from 192.0.2.1 port 4444:11: Bye Bye [preauth]",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Received disconnect from 2001:db8::1: 11: Bye Bye [preauth]",
            d(None, Some("2001:db8::1"), None, None),
        ),
        (
            "Received disconnect from 2001:db8::1 port 4444:11: disconnected by user",
            d(None, Some("2001:db8::1"), None, Some(4444)),
        ),
        (
            "Disconnected from 192.0.2.1 port 4444 [preauth]",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Disconnected from user ops 192.0.2.1 port 4444",
            d(Some("ops"), Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Disconnected from authenticating user root 192.0.2.1 port 4444 [preauth]",
            d(Some("root"), Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Disconnecting invalid user admin 192.0.2.1 port 4444: Too many authentication failures [preauth]",
            d(Some("admin"), Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Disconnecting: Too many authentication failures [preauth]",
            Details::default(),
        ),
        (
            "error: maximum authentication attempts exceeded for invalid user pi from 192.0.2.1 port 4444 ssh2 [preauth]",
            d(Some("pi"), Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Did not receive identification string from 192.0.2.1 port 4444",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Connection from 192.0.2.1 port 4444 on 10.0.0.5 port 22 rdomain \"\"",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Unable to negotiate with 192.0.2.1 port 4444: no matching key exchange method found.",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.1 port 4444",
            d(None, Some("192.0.2.1"), None, Some(4444)),
        ),
        (
            "Address 192.0.2.1 maps to host.example.net, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
            d(None, Some("192.0.2.1"), Some("host.example.net"), None),
        ),
        (
            "User root from 192.0.2.1 not allowed because not listed in AllowUsers",
            d(Some("root"), Some("192.0.2.1"), None, None),
        ),
        (
            "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
            d(Some("root"), None, None, None),
        ),
        (
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=",
            Details::default(),
        ),
        (
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=x rhost=192.0.2.1 user=bob",
            d(Some("bob"), Some("192.0.2.1"), None, None),
        ),
        // A name where an address is expected, and junk that is neither.
        (
            "Connection closed by gw.example.org port 22 [preauth]",
            d(None, None, Some("gw.example.org"), Some(22)),
        ),
        ("Connection closed by ??? [preauth]", Details::default()),
        // Not sure enough to take the word after `from` unless it is an IP.
        ("Server listening on 0.0.0.0 port 22.", Details::default()),
        ("something from somewhere", Details::default()),
        (
            "Port 99999 from 192.0.2.1 port 99999",
            d(None, Some("192.0.2.1"), None, None),
        ),
    ] {
        assert_eq!(details(message), expected, "{message:?}");
    }
}

#[test]
fn header_variants() {
    // A space-padded day, no host, no pid, a PRI, an RFC 3339 time.
    let p =
        parse("Dec  9 06:55:46 bastion sshd[1]: Connection closed by 192.0.2.1 port 22").unwrap();
    assert_eq!(
        (p.syslog_time, p.host, p.pid),
        ("Dec  9 06:55:46", Some("bastion"), Some(1))
    );
    assert_eq!(
        p.time.rfc3339(Some(2026), 0).unwrap(),
        "2026-12-09T06:55:46Z"
    );

    let p = parse("Dec 10 06:55:46 sshd[7]: Server listening on :: port 22.").unwrap();
    assert_eq!((p.host, p.process, p.pid), (None, "sshd", Some(7)));
    assert_eq!(p.message, "Server listening on :: port 22.");

    let p = parse("Dec 10 06:55:46 LabSZ sshd: Received signal 15; terminating.").unwrap();
    assert_eq!((p.host, p.process, p.pid), (Some("LabSZ"), "sshd", None));

    let p = parse("<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x from 192.0.2.1").unwrap();
    assert_eq!(p.syslog_time, "Dec 10 06:55:46");
    assert_eq!(p.details.user, Some("x"));

    let p = parse(
        "2026-11-21T08:04:09.123456+01:00 bastion sshd-session[812]: Accepted publickey for ops from 192.0.2.7 port 50522 ssh2",
    )
    .unwrap();
    assert_eq!(p.syslog_time, "2026-11-21T08:04:09.123456+01:00");
    assert_eq!(p.process, "sshd-session");
    // The configured year does not apply to a time that has one.
    assert_eq!(
        p.time.rfc3339(Some(1999), 0).unwrap(),
        "2026-11-21T07:04:09.123456Z"
    );
    let p = parse("2026-01-01T00:30:00-05:00 h sshd[1]: x").unwrap();
    assert_eq!(p.time.rfc3339(None, 0).unwrap(), "2026-01-01T05:30:00Z");
    let p = parse("2026-01-01T00:30:00Z h sshd[1]: x").unwrap();
    assert_eq!(p.time.rfc3339(None, 0).unwrap(), "2026-01-01T00:30:00Z");
    let p = parse("2026-01-01T00:30:00.1234567891234+00:00 h sshd[1]: x").unwrap();
    assert_eq!(
        p.time.rfc3339(None, 0).unwrap(),
        "2026-01-01T00:30:00.123456789Z"
    );
    // Crossing back over a year boundary.
    let p = parse("2026-01-01T00:30:00+01:00 h sshd[1]: x").unwrap();
    assert_eq!(p.time.rfc3339(None, 0).unwrap(), "2025-12-31T23:30:00Z");

    // Blanks around the message are not part of it.
    let p = parse("Dec 10 06:55:46 LabSZ sshd[1]:   spaced   \r\n").unwrap();
    assert_eq!(p.message, "spaced");
    let p = parse("Dec 10 06:55:46 LabSZ sshd[1]:").unwrap();
    assert_eq!(p.message, "");
}

#[test]
fn year_comes_from_config_or_the_received_time() {
    let classic = |line: &str| parse(line).unwrap().time;
    let dec10 = classic(SAMPLE);
    // Configured: used as is, whatever the received time.
    assert_eq!(
        dec10.rfc3339(Some(2017), ms(2026, 1, 1, 0, 0, 0)).unwrap(),
        "2017-12-10T06:55:46Z"
    );
    // Received in the same year, after the line.
    assert_eq!(
        dec10.rfc3339(None, ms(2026, 12, 10, 7, 0, 0)).unwrap(),
        "2026-12-10T06:55:46Z"
    );
    // A line up to a day "ahead" (clock skew, local time) stays in that year.
    assert_eq!(
        dec10.rfc3339(None, ms(2026, 12, 9, 12, 0, 0)).unwrap(),
        "2026-12-10T06:55:46Z"
    );
    // Further ahead: it is last year's.
    assert_eq!(
        dec10.rfc3339(None, ms(2026, 11, 21, 8, 0, 0)).unwrap(),
        "2025-12-10T06:55:46Z"
    );
    // New year: a Dec 31 line received on Jan 1 ...
    let dec31 = classic("Dec 31 23:59:59 h sshd[1]: x");
    assert_eq!(
        dec31.rfc3339(None, ms(2027, 1, 1, 0, 0, 3)).unwrap(),
        "2026-12-31T23:59:59Z"
    );
    // ... and a Jan 1 line from a clock ahead, received on Dec 31.
    let jan1 = classic("Jan  1 00:00:01 h sshd[1]: x");
    assert_eq!(
        jan1.rfc3339(None, ms(2026, 12, 31, 23, 59, 0)).unwrap(),
        "2027-01-01T00:00:01Z"
    );
    assert_eq!(
        jan1.rfc3339(None, ms(2026, 6, 1, 0, 0, 0)).unwrap(),
        "2026-01-01T00:00:01Z"
    );
    // Feb 29 goes to the latest leap year not after the received time.
    let feb29 = classic("Feb 29 12:00:00 h sshd[1]: x");
    assert_eq!(
        feb29.rfc3339(None, ms(2026, 11, 21, 0, 0, 0)).unwrap(),
        "2024-02-29T12:00:00Z"
    );
    assert_eq!(
        feb29.rfc3339(None, ms(2028, 3, 1, 0, 0, 0)).unwrap(),
        "2028-02-29T12:00:00Z"
    );
    assert_eq!(
        feb29.rfc3339(Some(2026), 0),
        Err("the day does not exist in the configured year")
    );
    // Extreme received times give an error, not a panic.
    assert!(dec10.rfc3339(None, i64::MAX).is_err());
    assert!(dec10.rfc3339(None, i64::MIN).is_err());
    assert_eq!(dec10.rfc3339(None, 0).unwrap(), "1969-12-10T06:55:46Z");
}

#[test]
fn date_arithmetic_round_trips() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    for days in (-800_000..800_000).step_by(37) {
        let (y, m, dd) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, dd), days);
        assert!((1..=12).contains(&m) && dd >= 1 && dd <= days_in_month(y, m));
    }
}

#[test]
fn rejects_what_is_not_a_syslog_line() {
    for (line, reason) in [
        ("", "empty line"),
        (" \r\n", "empty line"),
        ("hello", "the line does not start with `Mmm dd hh:mm:ss`"),
        (
            "Foo 10 06:55:46 LabSZ sshd[1]: x",
            "the line does not start with a month name",
        ),
        ("Dec 1x 06:55:46 LabSZ sshd[1]: x", "bad day"),
        ("Dec 100 06:55:46 LabSZ sshd[1]: x", "bad day"),
        (
            "Dec 32 06:55:46 LabSZ sshd[1]: x",
            "the day does not exist in that month",
        ),
        (
            "Apr 31 06:55:46 LabSZ sshd[1]: x",
            "the day does not exist in that month",
        ),
        (
            "Dec 00 06:55:46 LabSZ sshd[1]: x",
            "the day does not exist in that month",
        ),
        (
            "Dec 10 24:55:46 LabSZ sshd[1]: x",
            "the clock is not `hh:mm:ss`",
        ),
        (
            "Dec 10 06-55-46 LabSZ sshd[1]: x",
            "the clock is not `hh:mm:ss`",
        ),
        ("Dec 10 06:55:46", "no host or process after the time"),
        (
            "Dec 10 06:55:46LabSZ sshd[1]: x",
            "no host or process after the time",
        ),
        ("Dec 10 06:55:46 LabSZ sshd[1] x", "no `process[pid]:` tag"),
        ("Dec 10 06:55:46 LabSZ", "no `process[pid]:` tag"),
        ("Dec 10 06:55:46 LabSZ sshd[1: x", "no `]` after the pid"),
        ("Dec 10 06:55:46 LabSZ sshd[]: x", "the pid is not a number"),
        (
            "Dec 10 06:55:46 LabSZ sshd[99999999999]: x",
            "the pid is not a number",
        ),
        (
            "Dec 10 06:55:46 LabSZ sshd[-1]: x",
            "the pid is not a number",
        ),
        (
            "Dec 10 06:55:46 LabSZ some words: x",
            "the process name is not a word",
        ),
        (
            "Dec 10 06:55:46 LabSZ [1]: x",
            "the process name is not a word",
        ),
        ("2026-11-21 h sshd[1]: x", "the time is not RFC 3339"),
        (
            "2026-13-21T08:04:09Z h sshd[1]: x",
            "the day does not exist in that month",
        ),
        (
            "2026-02-29T08:04:09Z h sshd[1]: x",
            "the day does not exist in that month",
        ),
        ("2026-11-21T08:04:09 h sshd[1]: x", "the time has no zone"),
        (
            "2026-11-21T08:04:09+0100 h sshd[1]: x",
            "the time has no zone",
        ),
        (
            "2026-11-21T08:04:09.Z h sshd[1]: x",
            "the time is not RFC 3339",
        ),
        (
            "2026-11-21T08:04:09+24:00 h sshd[1]: x",
            "the time is not RFC 3339",
        ),
        (
            "2026-11-21T08:4:09Z h sshd[1]: x",
            "the time is not RFC 3339",
        ),
    ] {
        assert_eq!(parse(line).err(), Some(reason), "{line:?}");
    }
}

/// Every prefix of every real line, and pseudo-random junk: never a panic.
#[test]
fn never_panics_on_truncated_or_garbage_input() {
    let mut lines = log_lines();
    lines.push("<13>2026-11-21T08:04:09.123456+01:00 h sshd-session[812]: Invalid user é from 2001:db8::1 port 5".into());
    lines.push("Dec  9 06:55:46 h sshd[1]: message repeated 2 times: [ Disconnected from user ü 192.0.2.1 port 22]".into());
    for line in &lines {
        for (end, _) in line.char_indices() {
            if let Ok(p) = parse(&line[..end]) {
                let _ = p.time.rfc3339(None, 0);
            }
            let _ = details(&line[..end]);
        }
    }
    let alphabet = [
        "Dec",
        " ",
        "  ",
        "1",
        "0",
        ":",
        "[",
        "]",
        "<",
        ">",
        "-",
        "T",
        "Z",
        "+",
        ".",
        "é",
        "\u{1F600}",
        "from ",
        "port ",
        "user ",
        "rhost=",
        "Invalid user ",
        "Received disconnect from ",
        "message repeated ",
        " times: [",
        "192.0.2.1",
        "::1",
        "\r",
        "sshd",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..30_000 {
        let mut s = String::new();
        for _ in 0..(next() % 30) {
            s.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        if let Ok(p) = parse(&s) {
            let _ = p.time.rfc3339(None, next() as i64);
        }
        let _ = details(&s);
    }
}
