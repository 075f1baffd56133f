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

mod filter;
mod parse;
