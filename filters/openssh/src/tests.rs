use std::collections::BTreeMap;
use std::path::PathBuf;

use logway_filter_sdk::{BatchContext, Config, Edit, Event, Filter, Promoted, Value, Verdict};

use super::*;

/// The Loghub OpenSSH sample, shared by the workspace's checkouts.
fn loghub(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/loghub/OpenSSH")
        .join(file);
    assert!(
        path.is_file(),
        "ground truth missing: {} (the Loghub OpenSSH_2k sample is expected there)",
        path.display()
    );
    path
}

/// The log's lines (`str::lines` drops the `\r` of its CRLF endings).
fn log_lines() -> Vec<String> {
    let path = loghub("OpenSSH_2k.log");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(str::to_string).collect()
}

/// The structured CSV, one column-name-to-value map per row.
fn csv_rows() -> Vec<BTreeMap<String, String>> {
    let path = loghub("OpenSSH_2k.log_structured.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("CSV header").clone();
    for col in [
        "LineId",
        "Date",
        "Day",
        "Time",
        "Component",
        "Pid",
        "Content",
        "EventId",
        "EventTemplate",
    ] {
        assert!(
            headers.iter().any(|h| h == col),
            "CSV has no `{col}` column"
        );
    }
    reader
        .records()
        .map(|r| {
            let r = r.expect("well-formed CSV record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Lines paired with their CSV rows, checked to line up.
fn ground_truth() -> Vec<(String, BTreeMap<String, String>)> {
    let lines = log_lines();
    let rows = csv_rows();
    assert_eq!(lines.len(), 2000, "OpenSSH_2k.log should have 2000 lines");
    assert_eq!(rows.len(), lines.len(), "one CSV row per log line");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row["LineId"],
            (i + 1).to_string(),
            "CSV rows are in log order"
        );
    }
    lines.into_iter().zip(rows).collect()
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

fn int(fields: &[(String, Value)], key: &str) -> Option<i64> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| match v {
        Value::Integer(n) => *n,
        other => panic!("`{key}` is not an integer: {other:?}"),
    })
}

/// Unix milliseconds of a UTC date and time.
fn ms(year: i64, month: u8, day: u8, hour: i64, minute: i64, second: i64) -> i64 {
    (days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * 1000
}

fn ctx_at(received_ms: i64) -> BatchContext {
    BatchContext {
        received_ms,
        ..BatchContext::for_test("auth")
    }
}

fn filter(pairs: &[(&str, &str)]) -> Result<OpenSsh, String> {
    OpenSsh::new(&Config::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

const SAMPLE: &str =
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186";

fn d<'a>(
    user: Option<&'a str>,
    source_ip: Option<&'a str>,
    source_host: Option<&'a str>,
    source_port: Option<u16>,
) -> Details<'a> {
    Details {
        user,
        source_ip,
        source_host,
        source_port,
    }
}

#[test]
fn parses_the_sample_line() {
    let p = parse(SAMPLE).unwrap();
    assert_eq!(p.syslog_time, "Dec 10 06:55:46");
    assert_eq!(p.host, Some("LabSZ"));
    assert_eq!(p.process, "sshd");
    assert_eq!(p.pid, Some(24200));
    assert_eq!(p.message, "Invalid user webmaster from 173.234.31.186");
    assert_eq!(
        p.details,
        d(Some("webmaster"), Some("173.234.31.186"), None, None)
    );
    assert_eq!(
        p.time.rfc3339(Some(2017), 0).unwrap(),
        "2017-12-10T06:55:46Z"
    );
}

#[test]
fn every_loghub_line_matches_the_structured_csv() {
    let clock = time::macros::format_description!(
        "[year] [month repr:short] [day padding:none] [hour]:[minute]:[second]"
    );
    let f = filter(&[("year", "2017")]).unwrap();
    let ctx = ctx_at(0);
    let rows = ground_truth();
    for (line, row) in &rows {
        let id = &row["LineId"];
        let p = parse(line).unwrap_or_else(|e| panic!("line {id} {line:?}: {e}"));
        let time: Vec<&str> = p.syslog_time.split_whitespace().collect();
        assert_eq!(
            time,
            [&row["Date"], &row["Day"], &row["Time"]],
            "Date Day Time of line {id}"
        );
        assert_eq!(
            p.host,
            Some(row["Component"].as_str()),
            "Component of line {id}"
        );
        assert_eq!(
            p.pid.map(|p| p.to_string()).as_deref(),
            Some(row["Pid"].as_str()),
            "Pid of line {id}"
        );
        assert_eq!(p.message, row["Content"], "Content of line {id}");
        assert_eq!(p.process, "sshd", "process of line {id}");

        // Through the filter, as a text event with its CRLF remnant.
        let fields = sets(f.verdict(&ctx, &Event::text(&format!("{line}\r"))));
        let expected = time::PrimitiveDateTime::parse(
            &format!("2017 {} {} {}", row["Date"], row["Day"], row["Time"]),
            clock,
        )
        .unwrap_or_else(|e| panic!("line {id}: the time crate cannot read it: {e}"))
        .assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
        assert_eq!(
            text(&fields, "timestamp"),
            Some(expected.as_str()),
            "line {id}"
        );
        assert_eq!(text(&fields, "syslog_time"), Some(p.syslog_time));
        assert_eq!(text(&fields, "host"), Some(row["Component"].as_str()));
        assert_eq!(text(&fields, "process"), Some("sshd"));
        assert_eq!(
            int(&fields, "pid").map(|p| p.to_string()).as_deref(),
            Some(row["Pid"].as_str())
        );
        assert_eq!(text(&fields, "message"), Some(row["Content"].as_str()));
        assert_eq!(text(&fields, "parse_error"), None, "line {id}");
    }
}

/// The values of a template's `<*>`s in a message (each the shortest text
/// up to the next literal part): an oracle independent of [`details`].
fn template_values<'a>(template: &str, content: &'a str) -> Option<Vec<&'a str>> {
    let mut parts = template.split("<*>");
    let mut rest = content.strip_prefix(parts.next()?)?;
    let mut values = Vec::new();
    let parts: Vec<&str> = parts.collect();
    for (i, literal) in parts.iter().enumerate() {
        if i + 1 == parts.len() && literal.is_empty() {
            values.push(rest);
            rest = "";
        } else {
            let at = rest.find(literal)?;
            values.push(&rest[..at]);
            rest = &rest[at + literal.len()..];
        }
    }
    rest.is_empty().then_some(values)
}

/// `rhost=` and the like: an IP goes to `source_ip`, a name to `source_host`.
fn peer(addr: &str) -> (Option<&str>, Option<&str>) {
    let addr = addr.trim();
    if addr.parse::<IpAddr>().is_ok() {
        (Some(addr), None)
    } else {
        (None, Some(addr))
    }
}

/// For every line, what its template says about user and peer, compared
/// with [`details`].
#[test]
fn every_loghub_line_yields_the_user_and_peer_its_template_names() {
    let mut per_template: BTreeMap<String, usize> = BTreeMap::new();
    for (line, row) in ground_truth() {
        let (id, event, template) = (&row["LineId"], &row["EventId"], &row["EventTemplate"]);
        let content = row["Content"].as_str();
        let v = template_values(template, content).unwrap_or_else(|| {
            panic!("line {id}: template {template:?} does not match {content:?}")
        });
        // E14's template ends `port <*>]`, its lines `port 42393 ssh2]`.
        let port = |s: &str| Some(s.split(' ').next().unwrap().parse::<u16>().unwrap());
        let expected = match event.as_str() {
            // Accepted/Failed ... for [invalid user] U from IP port N ssh2
            "E1" | "E8" | "E9" | "E10" => d(Some(v[0]), Some(v[1]), None, port(v[2])),
            "E2" | "E3" | "E6" | "E7" | "E24" | "E25" | "E26" => d(None, Some(v[0]), None, None),
            "E4" => d(Some("admin"), None, None, None),
            "E5" => d(Some("root"), None, None, None),
            "E12" => d(Some(v[0]), None, None, None),
            "E13" => d(Some(v[0]), Some(v[1]), None, None),
            // message repeated N times: [ Failed password for root from IP port N]
            "E14" => d(Some("root"), Some(v[1]), None, port(v[2])),
            "E15" | "E16" => {
                let (ip, host) = peer(v[3]);
                d(None, ip, host, None)
            }
            "E17" => {
                let (ip, host) = peer(v[3]);
                d(Some("root"), ip, host, None)
            }
            "E19" => {
                let (ip, host) = peer(v[2]);
                d(None, ip, host, None)
            }
            "E20" => {
                let (ip, host) = peer(v[2]);
                d(Some(v[3]), ip, host, None)
            }
            "E22" | "E23" => d(Some(v[0]), None, None, None),
            "E27" => d(None, Some(v[1]), Some(v[0]), None),
            // fatal: Write failed; PAM ignoring max retries; check pass; user unknown
            "E11" | "E18" | "E21" => Details::default(),
            other => panic!("line {id}: template {other} is new, add it here"),
        };
        let p = parse(&line).unwrap();
        assert_eq!(p.details, expected, "line {id}: {content:?}");
        *per_template.entry(event.clone()).or_default() += 1;
    }
    assert_eq!(
        per_template.len(),
        27,
        "all templates seen: {per_template:?}"
    );
}

/// Specific lines, by LineId, with the values spelled out.
#[test]
fn named_loghub_lines_give_the_expected_fields() {
    let rows = ground_truth();
    let line = |id: usize| parse(&rows[id - 1].0).unwrap().details;
    let ip = "173.234.31.186";
    // reverse mapping checking getaddrinfo for HOST [IP] failed
    assert_eq!(
        line(1),
        d(None, Some(ip), Some("ns.marryaldkfaczcz.com"), None)
    );
    assert_eq!(line(2), d(Some("webmaster"), Some(ip), None, None));
    // input_userauth_request: invalid user webmaster [preauth]
    assert_eq!(line(3), d(Some("webmaster"), None, None, None));
    // pam_unix(sshd:auth): check pass; user unknown
    assert_eq!(line(4), Details::default());
    assert_eq!(line(5), d(None, Some(ip), None, None));
    assert_eq!(line(6), d(Some("webmaster"), Some(ip), None, Some(38926)));
    assert_eq!(line(7), d(None, Some(ip), None, None));
    assert_eq!(line(14), d(None, Some("52.80.34.196"), None, None));
    let omantel = "5.36.59.76.dynamic-dsl-ip.omantel.net.om";
    assert_eq!(line(28), d(Some("root"), None, Some(omantel), None));
    assert_eq!(
        line(29),
        d(Some("root"), Some("5.36.59.76"), None, Some(42393))
    );
    // message repeated 5 times: [ Failed password for root from ... ]
    assert_eq!(
        line(30),
        d(Some("root"), Some("5.36.59.76"), None, Some(42393))
    );
    assert_eq!(line(31), d(Some("root"), None, None, None));
    assert_eq!(line(32), d(Some("root"), None, Some(omantel), None));
    assert_eq!(line(33), Details::default());
    assert_eq!(line(139), d(None, Some("123.235.32.19"), None, None));
    assert_eq!(line(158), d(None, Some("195.154.37.122"), None, None));
    // sshd logs the name as sent, leading space included.
    assert_eq!(
        line(185),
        d(Some(" 0101"), Some("5.188.10.180"), None, None)
    );
    assert_eq!(line(186), d(Some(" 0101"), None, None, None));
    assert_eq!(
        line(193),
        d(Some("0"), Some("5.188.10.180"), None, Some(49811))
    );
    assert_eq!(line(222), d(None, Some("5.188.10.180"), None, None));
    assert_eq!(line(347), d(None, Some("103.99.0.122"), None, None));
    assert_eq!(
        line(956),
        d(Some("fztu"), Some("119.137.62.142"), None, Some(49116))
    );
    assert_eq!(line(957), d(Some("fztu"), None, None, None));
    assert_eq!(line(964), d(None, Some("119.137.62.142"), None, None));
    assert_eq!(line(965), d(Some("fztu"), None, None, None));
    assert_eq!(line(1001), d(Some("admin"), None, None, None));
    // fatal: Write failed: Connection reset by peer [preauth]
    assert_eq!(line(1869), Details::default());
}

#[test]
fn every_invalid_user_line_yields_user_and_source_ip() {
    let mut seen = 0;
    for (line, row) in ground_truth() {
        let content = &row["Content"];
        if let Some(rest) = content.strip_prefix("Invalid user ") {
            seen += 1;
            let (user, ip) = rest.rsplit_once(" from ").unwrap();
            let p = parse(&line).unwrap();
            assert_eq!(p.details.source_ip, Some(ip), "line {}", row["LineId"]);
            assert!(ip.parse::<IpAddr>().is_ok());
            // One line has an empty-looking name: ` 0101` is still a name.
            assert_eq!(p.details.user, Some(user), "line {}", row["LineId"]);
        }
        if content.starts_with("Failed password for")
            || content.starts_with("Accepted password for")
        {
            let p = parse(&line).unwrap();
            assert!(
                p.details.user.is_some()
                    && p.details.source_ip.is_some()
                    && p.details.source_port.is_some(),
                "line {}: {:?}",
                row["LineId"],
                p.details
            );
        }
    }
    assert_eq!(seen, 113, "Invalid user lines (E13)");
}

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
