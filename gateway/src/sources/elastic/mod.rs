//! The Elasticsearch-compatible API: what Filebeat, Logstash, Fluent Bit,
//! Vector, rsyslog, syslog-ng and the Elasticsearch client libraries send,
//! answered as Elasticsearch would.
//!
//! Served under `elasticsearch.path` (`/es`) on the HTTP listener, and at
//! the root of `elasticsearch.addr` when set (for clients without a path
//! setting). Every answer carries `X-Elastic-Product: Elasticsearch`
//! (the official clients refuse a server without it).
//!
//! - [`ingest`]: `_bulk`, `/{index}/_doc`, `/{index}/_create/{id}` → the
//!   pipeline; one item per action, in order ([`answer`]).
//! - [`handshake`]: `GET /`, `_license`, health, and setup calls.
//! - [`bulk`]: the NDJSON action/source format.

pub mod answer;
pub mod bulk;
pub mod config;
pub mod handshake;
pub mod ingest;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::state::AppState;
use answer::EsError;
use bulk::Op;
use config::ElasticsearchConfig;
use ingest::Kind;

/// Where the API is mounted and what it reports.
#[derive(Clone)]
struct Mount {
    prefix: Arc<str>,
    version: Arc<str>,
}

/// The API's routes under its prefix on the HTTP listener.
pub fn routes(config: &ElasticsearchConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    let mount = Mount {
        prefix: config.path.as_str().into(),
        version: config.version.as_str().into(),
    };
    let handler = move |State(state): State<Arc<AppState>>, req: Request<Body>| {
        let mount = mount.clone();
        async move { handle(state, &mount, req).await }
    };
    Router::new()
        .route(&config.path, any(handler.clone()))
        .route(&format!("{}/", config.path), any(handler.clone()))
        .route(&format!("{}/{{*rest}}", config.path), any(handler))
        .layer(axum::middleware::map_response(product_header))
}

/// The API at the root of a listener of its own (`elasticsearch.addr`).
pub fn root_router(config: &ElasticsearchConfig) -> Router<Arc<AppState>> {
    let mount = Mount {
        prefix: "".into(),
        version: config.version.as_str().into(),
    };
    Router::new()
        .fallback(
            move |State(state): State<Arc<AppState>>, req: Request<Body>| {
                let mount = mount.clone();
                async move { handle(state, &mount, req).await }
            },
        )
        .layer(axum::middleware::map_response(product_header))
}

async fn product_header(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

async fn handle(state: Arc<AppState>, mount: &Mount, req: Request<Body>) -> Response {
    let path = req.uri().path();
    let rel = path.strip_prefix(&*mount.prefix).unwrap_or(path);
    let segments: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let write = method == Method::POST || method == Method::PUT;
    let kind = match segs.as_slice() {
        ["_bulk"] if write => Some(Kind::Bulk { index: None }),
        [index, "_bulk"] if write => Some(Kind::Bulk {
            index: Some(index.to_string()),
        }),
        [index, "_doc"] if method == Method::POST => Some(single(index, Op::Index, None)),
        [index, "_doc" | "_create", id] if write => {
            let op = if segs[1] == "_create" {
                Op::Create
            } else {
                Op::Index
            };
            Some(single(index, op, Some(id)))
        }
        // Pre-7 style `/{index}/{type}[/{id}]` (rsyslog without bulk mode).
        [index, ty]
            if method == Method::POST && !index.starts_with('_') && !ty.starts_with('_') =>
        {
            Some(single(index, Op::Index, None))
        }
        [index, ty, id]
            if write && !index.starts_with('_') && !ty.starts_with('_') && !id.starts_with('_') =>
        {
            Some(single(index, Op::Index, Some(id)))
        }
        _ => None,
    };
    if let Some(kind) = kind {
        let core = match state.core() {
            Ok(core) => core.clone(),
            Err(e) => return EsError::from(e).into_response(),
        };
        return match kind {
            Kind::Bulk { index } => ingest::bulk(&core, req, index).await,
            single => ingest::single(&core, req, single).await,
        };
    }
    if let Some(resp) = handshake::answer(&method, &segs, &mount.version) {
        return resp;
    }
    let reason = match segs.as_slice() {
        [.., "_update", _] | ["_update_by_query" | "_delete_by_query", ..] => {
            "Logway stores logs append-only: updates and deletes are not supported".to_string()
        }
        [.., "_search" | "_msearch" | "_count" | "_async_search"] => {
            "Logway's Elasticsearch API takes logs in; search them with /api/v1/search, the CLI or the UI".to_string()
        }
        _ => format!("no handler found for uri [{path}] and method [{method}]"),
    };
    EsError::bad_request(reason).into_response()
}

fn single(index: &str, op: Op, id: Option<&str>) -> Kind {
    Kind::Single {
        index: index.to_string(),
        op,
        id: id.map(str::to_string),
    }
}
