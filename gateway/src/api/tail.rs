//! `GET /api/v1/tail?q=&type=`: a live tail as Server-Sent Events (the
//! browser's `EventSource`): `event: events` with a JSON array of newly
//! durable events that match `q`, `event: skipped` with the number of
//! matching events this client missed because it read too slowly
//! (`{"skipped": N}`, a running total), and comment heartbeats. A bad
//! query is a 400 before the stream starts. See [`crate::tail`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use time::OffsetDateTime;

use super::search::{Params, admin_request};
use crate::error::ApiError;
use crate::hot::search::{SearchError, normalize_negation, parse_query};
use crate::state::AppState;
use crate::tail::{Subscription, TailError};

/// How often an idle stream sends a heartbeat comment.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events that arrive this close together go out as one message.
const GATHER: Duration = Duration::from_millis(100);

pub async fn tail(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<Response, ApiError> {
    let (core, tenant, _, request) =
        admin_request(&state, &headers, &uri, params, OffsetDateTime::now_utc())?;
    // The query must be valid search syntax, with its error position.
    parse_query(&core.hot, &request.query).map_err(|e| match e {
        SearchError::Syntax { message, position } => ApiError::InvalidQuery {
            message,
            position: Some(position),
        },
        other => ApiError::InvalidQuery {
            message: other.to_string(),
            position: None,
        },
    })?;
    let sub = core
        .tail
        .subscribe(
            &tenant,
            request.log_type.as_deref(),
            &normalize_negation(&request.query),
        )
        .map_err(|e| match e {
            TailError::TooMany(_) | TailError::Closed => ApiError::Unavailable(e.to_string()),
            TailError::Query(message) => ApiError::InvalidQuery {
                message,
                position: None,
            },
        })?;
    let mut resp = Sse::new(events(sub))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response();
    // Proxies must not buffer the stream.
    resp.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(resp)
}

/// The stream of one tail: each batch of matching events, and the skipped
/// count whenever it grew.
fn events(sub: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (sub, 0u64, Vec::<Event>::new()),
        |(mut sub, mut told, mut ready)| async move {
            loop {
                if let Some(e) = ready.pop() {
                    return Some((Ok(e), (sub, told, ready)));
                }
                let data = sub.next_gathered(GATHER).await?;
                let skipped = sub.skipped();
                // Sent in the order pushed last-first: events, then skipped.
                if skipped > told {
                    told = skipped;
                    ready.push(
                        Event::default()
                            .event("skipped")
                            .data(format!("{{\"skipped\":{skipped}}}")),
                    );
                }
                ready.push(Event::default().event("events").data(data));
            }
        },
    )
}
