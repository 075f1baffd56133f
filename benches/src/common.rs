//! What both benchmark programs need: reading the gateway's metrics.

/// Sum of the samples of every series whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway's `/metrics` text.
pub async fn fetch_metrics(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}
