//! Real logs (../shared/data/loghub) posted as text/plain are found back by
//! search: per query, the number of hits equals the number of lines in the
//! file that match (computed here with the same tokenization as the index:
//! split on non-alphanumerics, lowercase).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::common::*;

const DATASETS: &[&str] = &[
    "Android",
    "Apache",
    "HealthApp",
    "Linux",
    "OpenSSH",
    "Proxifier",
];

fn loghub_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub")
}

fn tokens(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn contains_seq(haystack: &[String], needle: &[String]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn loghub_lines_are_found_back_by_search() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    for name in DATASETS {
        let path = loghub_dir().join(name).join(format!("{name}_2k.log"));
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&raw).to_string();
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let csv_rows = std::fs::read_to_string(
            loghub_dir()
                .join(name)
                .join(format!("{name}_2k.log_structured.csv")),
        )
        .unwrap()
        .lines()
        .count()
            - 1;
        assert_eq!(lines.len(), csv_rows, "{name}: lines vs ground-truth rows");

        let log_type = format!("loghub_{}", name.to_lowercase());
        let r = gw
            .post(&format!("/v1/logs/{log_type}"), A_INGEST)
            .header("content-type", "text/plain")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!(answer["accepted"], lines.len(), "{name}");
        gw.search_until(
            A_ADMIN,
            &[("q", ""), ("type", &log_type)],
            lines.len() as u64,
        )
        .await;

        let tokenized: Vec<Vec<String>> = lines.iter().map(|l| tokens(l)).collect();
        // The three most frequent words (5-20 letters) of the file.
        let mut freq: HashMap<&str, usize> = HashMap::new();
        for t in tokenized.iter().flatten() {
            if (5..=20).contains(&t.len()) && t.chars().all(|c| c.is_ascii_alphabetic()) {
                *freq.entry(t.as_str()).or_default() += 1;
            }
        }
        let mut words: Vec<(&str, usize)> = freq.into_iter().collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (word, _) in words.iter().take(3) {
            let expected = tokenized
                .iter()
                .filter(|t| t.iter().any(|x| x == word))
                .count() as u64;
            let (_, body) = gw
                .search_raw(A_ADMIN, &[("q", word), ("type", &log_type), ("limit", "1")])
                .await;
            assert_eq!(body["total"].as_u64(), Some(expected), "{name}: `{word}`");
        }
        // Whole lines, as phrases: the line itself is among the hits, and the
        // count equals the lines that contain that token sequence.
        for i in [0, lines.len() / 3, lines.len() / 2, lines.len() - 1] {
            let seq = &tokenized[i];
            if seq.is_empty() || seq.iter().any(|t| t.len() >= 30) {
                continue;
            }
            let phrase = format!("\"{}\"", seq.join(" "));
            let expected = tokenized.iter().filter(|t| contains_seq(t, seq)).count() as u64;
            let (status, body) = gw
                .search_raw(
                    A_ADMIN,
                    &[("q", &phrase), ("type", &log_type), ("limit", "100")],
                )
                .await;
            assert_eq!(status, 200, "{name}: {body}");
            assert_eq!(
                body["total"].as_u64(),
                Some(expected),
                "{name} line {}: {phrase}",
                i + 1
            );
            assert!(
                body["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h["message"] == lines[i]),
                "{name} line {} is returned as sent",
                i + 1
            );
        }
    }
    gw.stop().await;
}
