//! The HTTP client of `logway search`, `replay` and `filter
//! upload|list|delete`: requests to a running gateway's API with the
//! tenant's admin key, answers printed for people (progress on stderr,
//! data on stdout).

use anyhow::{Context, bail};

use super::{FilterCommand, Remote};
use crate::replay::JobState;

pub async fn replay(
    log_type: Option<String>,
    from: String,
    to: String,
    query: Option<String>,
    remote: Remote,
) -> anyhow::Result<()> {
    use std::io::Write;
    let client = reqwest::Client::new();
    let base = format!("{}/api/v1/replay", remote.url.trim_end_matches('/'));
    let send = |req| call(req, remote.key.as_deref(), &remote.url);
    let job = send(
        client
            .post(&base)
            .json(&serde_json::json!({"type": log_type, "from": from, "to": to, "query": query})),
    )
    .await?;
    let id = job["id"]
        .as_str()
        .context("no job id in the answer")?
        .to_string();
    eprintln!("replay job {id}");
    let (progress, state) = loop {
        let p = send(client.get(format!("{base}/{id}"))).await?;
        let (done, total) = (
            p["objects_done"].as_u64().unwrap_or(0),
            p["objects_total"].as_u64().unwrap_or(0),
        );
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(0).min(width) as usize;
        eprint!(
            "\r[{}{}] {done}/{total} objects, {} events indexed, {} duplicates, {}/s{}   ",
            "#".repeat(filled),
            "-".repeat(width as usize - filled),
            p["events_indexed"],
            p["duplicates_skipped"],
            p["events_per_sec"],
            p["eta_seconds"]
                .as_f64()
                .map(|e| format!(", ETA {e:.0}s"))
                .unwrap_or_default(),
        );
        let _ = std::io::stderr().flush();
        let state: Option<JobState> = serde_json::from_value(p["state"].clone()).ok();
        if !state.is_some_and(JobState::is_active) {
            eprintln!();
            break (p, state);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    println!("{}", serde_json::to_string_pretty(&progress)?);
    match state {
        Some(JobState::Done) if progress["error_count"].as_u64() == Some(0) => Ok(()),
        Some(JobState::Done) => bail!("replay finished with {} errors", progress["error_count"]),
        _ => bail!(
            "replay {}",
            progress["state"]
                .as_str()
                .unwrap_or("ended in an unknown state")
        ),
    }
}

pub async fn filter(command: FilterCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let (req, remote) = match command {
        FilterCommand::Test { .. } => unreachable!("run locally by filter_test"),
        FilterCommand::Upload {
            name,
            component,
            remote,
        } => {
            let wasm = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            let url = format!("{}/api/v1/filters/{name}", remote.url.trim_end_matches('/'));
            (client.put(url).body(wasm), remote)
        }
        FilterCommand::List { remote } => {
            let url = format!("{}/api/v1/filters", remote.url.trim_end_matches('/'));
            (client.get(url), remote)
        }
        FilterCommand::Delete {
            name,
            force,
            remote,
        } => {
            let url = format!("{}/api/v1/filters/{name}", remote.url.trim_end_matches('/'));
            let req = client.delete(url).query(&[("force", force)]);
            (req, remote)
        }
    };
    let body = call(req, remote.key.as_deref(), &remote.url).await?;
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}

/// Sends a request to a running gateway (with the key, if any): its JSON
/// answer (`null` when empty), or an error with the gateway's message.
pub(super) async fn call(
    req: reqwest::RequestBuilder,
    key: Option<&str>,
    url: &str,
) -> anyhow::Result<serde_json::Value> {
    let req = match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    let body: serde_json::Value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).context("the gateway answered something that is not JSON")?
    };
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error"]["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(body)
}

pub async fn search(
    url: &str,
    key: Option<String>,
    query: String,
    from: Option<String>,
    to: Option<String>,
    log_type: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut params = vec![("q", query), ("limit", limit.to_string())];
    params.extend(from.map(|v| ("from", v)));
    params.extend(to.map(|v| ("to", v)));
    params.extend(log_type.map(|v| ("type", v)));
    let req = reqwest::Client::new()
        .get(format!("{}/api/v1/search", url.trim_end_matches('/')))
        .query(&params);
    let body = call(req, key.as_deref(), url).await?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for hit in body["hits"].as_array().into_iter().flatten() {
        writeln!(out, "{hit}")?;
    }
    eprintln!(
        "{} of {} matching events",
        body["hits"].as_array().map_or(0, |h| h.len()),
        body["total"]
    );
    Ok(())
}
