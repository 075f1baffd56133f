//! Posting to receivers outside the gateway (alert receivers, event
//! webhooks, Prometheus remote-write) and reading their answer the one way
//! they all read it: a 2xx is taken; a 4xx other than 408 and 429 is
//! refused for good (sending it again cannot help); 408, 429, 5xx and no
//! answer are worth another try.

/// What a receiver's answer means for the sender.
pub enum Answer {
    Accepted,
    /// Refused for good, with the status and the start of the body.
    Refused(String),
    /// Try again later, with why.
    Retry(String),
}

/// Sends `req` (to `url`, named in the reasons) and reads the answer.
pub async fn post(req: reqwest::RequestBuilder, url: &str) -> Answer {
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Retry(format!("{url}: {e}")),
    };
    let status = r.status();
    if status.is_success() {
        return Answer::Accepted;
    }
    let text: String = r
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let message = format!("{url} answered {status}: {text}");
    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        Answer::Refused(message)
    } else {
        Answer::Retry(message)
    }
}
