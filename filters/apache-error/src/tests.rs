use std::path::PathBuf;

use logway_filter_sdk::{BatchContext, Config, Edit, Event, Filter, Value, Verdict};

use super::*;

/// The Loghub Apache sample, shared by the workspace's checkouts.
fn loghub(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/loghub/Apache")
        .join(file);
    assert!(
        path.is_file(),
        "ground truth missing: {} (the Loghub Apache_2k sample is expected there)",
        path.display()
    );
    path
}

/// The log's lines (`str::lines` drops the `\r` of its CRLF endings).
fn log_lines() -> Vec<String> {
    let path = loghub("Apache_2k.log");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(str::to_string).collect()
}

/// The structured CSV as (LineId, Time, Level, Content) rows.
fn csv_rows() -> Vec<(usize, String, String, String)> {
    let path = loghub("Apache_2k.log_structured.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("CSV header").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("CSV has no `{name}` column"))
    };
    let (id, time, level, content) = (col("LineId"), col("Time"), col("Level"), col("Content"));
    reader
        .records()
        .map(|r| {
            let r = r.expect("well-formed CSV record");
            (
                r[id].parse().expect("numeric LineId"),
                r[time].to_string(),
                r[level].to_string(),
                r[content].to_string(),
            )
        })
        .collect()
}

/// The fields a verdict sets, in order (panics on any other verdict).
fn sets(verdict: Verdict) -> Vec<(String, Value)> {
    match verdict {
        Verdict::Edits(edits) => edits
            .into_iter()
            .map(|e| match e {
                Edit::Set(pair) => pair,
                other => panic!("unexpected edit {other:?}"),
            })
            .collect(),
        other => panic!("expected edits, got {other:?}"),
    }
}

fn text<'a>(fields: &'a [(String, Value)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| match v {
        Value::Text(s) => s.as_str(),
        other => panic!("`{key}` is not text: {other:?}"),
    })
}

const SAMPLE: &str =
    "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties";

#[test]
fn parses_the_sample_line() {
    let p = parse(SAMPLE).unwrap();
    assert_eq!(p.time_text, "Sun Dec 04 04:47:44 2005");
    assert_eq!(p.time.rfc3339(), "2005-12-04T04:47:44Z");
    assert_eq!(p.level, "notice");
    assert_eq!(p.module, None);
    assert_eq!(
        p.message,
        "workerEnv.init() ok /etc/httpd/conf/workers2.properties"
    );
    assert_eq!(p.client_ip, None);
}

#[test]
fn reads_the_client_bracket() {
    let p = parse(
        "[Sun Dec 04 05:15:09 2005] [error] [client 222.166.160.184] Directory index forbidden by rule: /var/www/html/",
    )
    .unwrap();
    assert_eq!(p.level, "error");
    assert_eq!(p.client_ip, Some("222.166.160.184"));
    assert_eq!(
        p.message,
        "[client 222.166.160.184] Directory index forbidden by rule: /var/www/html/"
    );
    // Not an address: no client_ip, the line still parses.
    let p = parse("[Sun Dec 04 05:15:09 2005] [error] [client nobody] x").unwrap();
    assert_eq!(p.client_ip, None);
}

#[test]
fn every_loghub_line_matches_the_structured_csv() {
    let lines = log_lines();
    let rows = csv_rows();
    assert_eq!(lines.len(), 2000, "Apache_2k.log should have 2000 lines");
    assert_eq!(rows.len(), lines.len(), "one CSV row per log line");
    // An independent reading of the time, to check `timestamp`.
    let ctime = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] [year]"
    );
    let mut clients = 0;
    for (i, (line, (id, time_col, level_col, content_col))) in lines.iter().zip(&rows).enumerate() {
        assert_eq!(*id, i + 1, "CSV rows are in log order");
        let p = parse(line).unwrap_or_else(|e| panic!("line {id} {line:?}: {e}"));
        assert_eq!(p.time_text, time_col, "Time of line {id}");
        assert_eq!(p.level, level_col, "Level of line {id}");
        assert_eq!(p.message, content_col, "Content of line {id}");
        let expected = time::PrimitiveDateTime::parse(time_col, ctime)
            .unwrap_or_else(|e| panic!("line {id}: the time crate cannot read {time_col:?}: {e}"))
            .assume_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(p.time.rfc3339(), expected, "timestamp of line {id}");
        if content_col.starts_with("[client ") {
            clients += 1;
            assert!(p.client_ip.is_some(), "client_ip of line {id}");
        } else {
            assert_eq!(p.client_ip, None, "client_ip of line {id}");
        }
        // Through the filter, as a text event with its CRLF remnant.
        let fields = sets(ApacheError::verdict(&Event::text(&format!("{line}\r"))));
        assert_eq!(text(&fields, "apache_time"), Some(time_col.as_str()));
        assert_eq!(text(&fields, "level"), Some(level_col.as_str()));
        assert_eq!(text(&fields, "message"), Some(content_col.as_str()));
        assert_eq!(text(&fields, "timestamp"), Some(expected.as_str()));
        assert_eq!(text(&fields, "parse_error"), None);
    }
    assert_eq!(clients, 32, "lines with a [client] bracket");
}

#[test]
fn apache_2_4_lines() {
    let p = parse(
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 192.0.2.7:54321] AH00124: Request exceeded the limit",
    )
    .unwrap();
    assert_eq!(p.time_text, "Wed Oct 11 14:32:52.123456 2000");
    assert_eq!(p.time.rfc3339(), "2000-10-11T14:32:52.123456Z");
    assert_eq!(p.level, "error");
    assert_eq!(p.module, Some("core"));
    assert_eq!(p.client_ip, Some("192.0.2.7"));
    assert!(p.message.starts_with("[pid 35708:tid 4328636416] "));

    let p = parse("[Wed Oct 11 14:32:52 2000] [:error] [client ::1:56789] PHP Warning").unwrap();
    assert_eq!((p.module, p.level), (None, "error"));
    assert_eq!(p.client_ip, Some("::1"));
    let p = parse("[Wed Oct 11 14:32:52 2000] [ssl:warn] [client 2001:db8::2] x").unwrap();
    assert_eq!((p.module, p.level), (Some("ssl"), "warn"));
    assert_eq!(p.client_ip, Some("2001:db8::2"));
    let p = parse("[Wed Oct 11 14:32:52.5 2000] [mpm_event:trace1] x").unwrap();
    assert_eq!(p.time.rfc3339(), "2000-10-11T14:32:52.5Z");
    assert_eq!(p.level, "trace1");
}

#[test]
fn accepts_lenient_spacing() {
    // A space-padded day (asctime style) and no message at all.
    let p = parse("[Sun Dec  4 04:47:44 2005] [warn]").unwrap();
    assert_eq!(p.time.rfc3339(), "2005-12-04T04:47:44Z");
    assert_eq!((p.level, p.message), ("warn", ""));
    let p = parse("[Sun Dec 04 04:47:44 2005]   [error]   spaced out  \r\n").unwrap();
    assert_eq!(p.message, "spaced out");
    // Leap day of a leap year.
    assert!(parse("[Sun Feb 29 00:00:00 2004] [error] x").is_ok());
}

#[test]
fn rejects_what_is_not_an_error_log_line() {
    for (line, reason) in [
        ("", "empty line"),
        ("   \r\n", "empty line"),
        ("hello world", "line does not start with `[TIME]`"),
        ("[Sun Dec 04 04:47:44 2005", "no `]` after the time"),
        (
            "[Sun Dec 04 04:47:44 2005] notice x",
            "no `[LEVEL]` after the time",
        ),
        (
            "[Sun Dec 04 04:47:44 2005] [notice",
            "no `]` after the level",
        ),
        ("[Sun Dec 04 04:47:44 2005] [] x", "the level is not a word"),
        (
            "[Sun Dec 04 04:47:44 2005] [client 1.2.3.4] x",
            "the level is not a word",
        ),
        (
            "[Sun Dec 04 04:47:44 2005] [client ::1] x",
            "the level is not a word",
        ),
        ("[] [error] x", "the time is not `Www Mmm DD HH:MM:SS YYYY`"),
        (
            "[Sun Dec 04 04:47:44] [error] x",
            "the time is not `Www Mmm DD HH:MM:SS YYYY`",
        ),
        (
            "[Sun Dec 04 04:47:44 2005 UTC] [error] x",
            "the time is not `Www Mmm DD HH:MM:SS YYYY`",
        ),
        (
            "[Sunday Dec 04 04:47:44 2005] [error] x",
            "the time has no weekday",
        ),
        (
            "[Sun Foo 04 04:47:44 2005] [error] x",
            "the time has no month name",
        ),
        (
            "[Sun Dec 04 04:47:44 05] [error] x",
            "the year is not 4 digits",
        ),
        ("[Sun Dec 4x 04:47:44 2005] [error] x", "bad day"),
        (
            "[Sun Dec 32 04:47:44 2005] [error] x",
            "the day does not exist in that month",
        ),
        (
            "[Sun Feb 29 04:47:44 2005] [error] x",
            "the day does not exist in that month",
        ),
        (
            "[Sun Dec 00 04:47:44 2005] [error] x",
            "the day does not exist in that month",
        ),
        (
            "[Sun Dec 04 4:47:44 2005] [error] x",
            "the clock is not `HH:MM:SS`",
        ),
        (
            "[Sun Dec 04 04:47:4x 2005] [error] x",
            "the clock is not `HH:MM:SS`",
        ),
        (
            "[Sun Dec 04 24:00:00 2005] [error] x",
            "the clock is out of range",
        ),
        (
            "[Sun Dec 04 04:60:00 2005] [error] x",
            "the clock is out of range",
        ),
        (
            "[Sun Dec 04 04:47:44. 2005] [error] x",
            "bad fractional second",
        ),
        (
            "[Sun Dec 04 04:47:44.1234567890 2005] [error] x",
            "bad fractional second",
        ),
    ] {
        assert_eq!(parse(line), Err(reason), "{line:?}");
    }
}

/// Every prefix of every real line, and pseudo-random junk: never a panic.
#[test]
fn never_panics_on_truncated_or_garbage_input() {
    let mut lines = log_lines();
    lines.push("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1] [client [::1]:80] é".into());
    for line in &lines {
        for (end, _) in line.char_indices() {
            let _ = parse(&line[..end]);
        }
    }
    // A small xorshift generator over bytes that matter to the parser,
    // including multi-byte characters next to the delimiters.
    let alphabet = [
        "[",
        "]",
        ":",
        " ",
        ".",
        "0",
        "4",
        "9",
        "Sun",
        "Dec",
        "Feb",
        "2005",
        "client ",
        "é",
        "\u{1F600}",
        "\r",
        "\n",
        "\t",
        "a",
        "-",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut s = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for _ in 0..(state % 40) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = parse(&s);
    }
}

#[test]
fn filter_sets_the_fields_on_text_and_json_events() {
    let fields = sets(ApacheError::verdict(&Event::text(SAMPLE)));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["timestamp", "apache_time", "level", "message"]);
    assert_eq!(text(&fields, "timestamp"), Some("2005-12-04T04:47:44Z"));

    let json = serde_json::json!({"service": "httpd", "message": SAMPLE}).to_string();
    let fields = sets(ApacheError::verdict(&Event::json_text(&json)));
    assert_eq!(text(&fields, "level"), Some("notice"));
    assert_eq!(
        text(&fields, "message"),
        Some("workerEnv.init() ok /etc/httpd/conf/workers2.properties")
    );

    let fields = sets(ApacheError::verdict(&Event::text(
        "[Sun Dec 04 05:15:09 2005] [error] [client 10.0.0.1] File does not exist",
    )));
    assert_eq!(text(&fields, "client_ip"), Some("10.0.0.1"));
}

#[test]
fn filter_marks_what_it_cannot_parse() {
    let cases = [
        (
            Event::text("GET / HTTP/1.1"),
            "apache-error: line does not start with `[TIME]`",
        ),
        (Event::text(""), "apache-error: empty line"),
        (
            Event::json_text(r#"{"level":"info"}"#),
            "apache-error: no string `message` field",
        ),
        (
            Event::json_text(r#"{"message":42}"#),
            "apache-error: no string `message` field",
        ),
        (
            Event::json_text("not json"),
            "apache-error: no string `message` field",
        ),
        (
            Event {
                raw: vec![b'[', 0xff, 0xfe, b']'],
                ..Event::text("")
            },
            "apache-error: the line is not UTF-8",
        ),
    ];
    for (event, expected) in cases {
        let fields = sets(ApacheError::verdict(&event));
        assert_eq!(fields.len(), 1, "only parse_error is set: {fields:?}");
        assert_eq!(text(&fields, "parse_error"), Some(expected));
    }
}

#[test]
fn filter_trait_answers_one_verdict_per_event_and_refuses_config() {
    let mut filter = ApacheError::new(&Config::default()).unwrap();
    let ctx = BatchContext::for_test("apache_error");
    let events = [
        Event::text(SAMPLE),
        Event::text("junk"),
        Event::text(SAMPLE),
    ];
    let verdicts = filter.process_batch(&ctx, &events);
    assert_eq!(verdicts.len(), 3);
    let err = ApacheError::new(&Config::new(vec![("year".into(), "2005".into())]))
        .err()
        .unwrap();
    assert!(err.contains("`year`"), "{err}");
}

#[test]
fn rfc3339_keeps_the_fraction_digits() {
    let t = DateTime {
        year: 2005,
        month: 1,
        day: 2,
        hour: 3,
        minute: 4,
        second: 5,
        nanos: 7_000_000,
        frac_digits: 3,
    };
    assert_eq!(t.rfc3339(), "2005-01-02T03:04:05.007Z");
    assert_eq!(
        DateTime {
            nanos: 1,
            frac_digits: 9,
            ..t
        }
        .rfc3339(),
        "2005-01-02T03:04:05.000000001Z"
    );
}
