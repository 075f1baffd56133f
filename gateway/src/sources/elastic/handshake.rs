//! What clients ask before they send (read from their source; the list per
//! client is in `docs/guides/elasticsearch.md`): `GET`/`HEAD /` (version,
//! `build_flavor`, tagline), `_license` (Filebeat and Logstash stop without
//! an active one), `_cluster/health` (Vector's health check), `_cat/health`
//! (rsyslog), `_nodes`, `_xpack`, and the setup calls of Filebeat and
//! Logstash (index templates, ILM policies, ingest pipelines, data
//! streams, indices, aliases). Setup calls are accepted and change
//! nothing: an existence check answers "exists", so clients skip the
//! write; a write answers `acknowledged`. None of these needs a key:
//! they reveal nothing but the configured version.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::answer::{EsError, json as json_response};

/// Name and uuid the cluster reports.
const CLUSTER: &str = "logway";
const CLUSTER_UUID: &str = "bG9nd2F5LWNsdXN0ZXIx";
const LUCENE: &str = "9.12.0";
/// A license that never expires (2100-01-01).
const LICENSE_EXPIRY_MS: i64 = 4_102_444_800_000;

/// The answer to a non-ingest endpoint, or `None` if there is none.
pub fn answer(method: &Method, segments: &[&str], version: &str) -> Option<Response> {
    let head = method == Method::HEAD;
    let get = method == Method::GET || head;
    let write = matches!(*method, Method::PUT | Method::POST | Method::DELETE);
    let body = match segments {
        [] if get => info(version),
        ["_license"] if get => license(),
        ["_xpack"] if get => xpack(),
        ["_cluster", "health", ..] if get => health(),
        ["_cat", "health"] if get => return Some(cat_health(head)),
        ["_nodes", ..] if get => nodes(version),
        ["_security", "_authenticate"] if get => authenticate(),
        // Index templates, component templates, legacy templates.
        [
            kind @ ("_index_template" | "_template" | "_component_template"),
            name,
        ] => {
            if write {
                acknowledged()
            } else if get {
                template(kind, name)
            } else {
                return None;
            }
        }
        ["_ilm", "policy", name] if get => {
            json!({ *name: {"version": 1, "modified_date": "2024-01-01T00:00:00.000Z", "policy": {"phases": {}}}})
        }
        ["_ilm", "policy", _] if write => acknowledged(),
        ["_ilm", "policy"] if get => json!({}),
        ["_ingest", "pipeline", name] if get => {
            json!({ *name: {"description": "accepted by Logway, not run", "processors": []}})
        }
        ["_ingest", "pipeline", _] if write => acknowledged(),
        ["_data_stream", name] if get => data_stream(name),
        ["_data_stream", _, ..] if write => acknowledged(),
        ["_data_stream", _, "_lifecycle"] if get => json!({"data_streams": []}),
        ["_alias" | "_aliases", ..] if write => acknowledged(),
        ["_alias", ..] if get => json!({}),
        [_, "_refresh" | "_flush"] | ["_refresh" | "_flush"] if write || get => {
            json!({"_shards": {"total": 1, "successful": 1, "failed": 0}})
        }
        [_, "_mapping" | "_settings" | "_alias", ..] if write => acknowledged(),
        [index, "_mapping" | "_settings", ..] if get => json!({ *index: {} }),
        // An index (or alias) itself: it "exists"; creating one succeeds.
        [index] if !index.starts_with('_') && get => {
            json!({ *index: {"aliases": {}, "mappings": {}, "settings": {}}})
        }
        [index] if !index.starts_with('_') && *method == Method::PUT => {
            json!({"acknowledged": true, "shards_acknowledged": true, "index": index})
        }
        [index] if !index.starts_with('_') && *method == Method::DELETE => {
            return Some(
                EsError::bad_request(format!(
                    "Logway keeps logs until their retention ends; index [{index}] cannot be deleted through the Elasticsearch API"
                ))
                .into_response(),
            );
        }
        _ => return None,
    };
    if head {
        return Some(json_response(StatusCode::OK, Vec::new()));
    }
    Some(json_response(StatusCode::OK, body.to_string()))
}

fn info(version: &str) -> Value {
    let minimum_wire = if version.starts_with('7') {
        "6.8.0"
    } else {
        "7.17.0"
    };
    json!({
        "name": CLUSTER,
        "cluster_name": CLUSTER,
        "cluster_uuid": CLUSTER_UUID,
        "version": {
            "number": version,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "logway",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": false,
            "lucene_version": LUCENE,
            "minimum_wire_compatibility_version": minimum_wire,
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

fn license() -> Value {
    json!({"license": {
        "status": "active",
        "uid": CLUSTER_UUID,
        "type": "basic",
        "issue_date": "2025-01-01T00:00:00.000Z",
        "issue_date_in_millis": 1_735_689_600_000i64,
        "expiry_date_in_millis": LICENSE_EXPIRY_MS,
        "max_nodes": 1000,
        "max_resource_units": null,
        "issued_to": CLUSTER,
        "issuer": "elasticsearch",
        "start_date_in_millis": -1
    }})
}

fn xpack() -> Value {
    json!({
        "build": {"hash": "logway", "date": "2025-01-01T00:00:00.000Z"},
        "license": {"uid": CLUSTER_UUID, "type": "basic", "mode": "basic", "status": "active", "expiry_date_in_millis": LICENSE_EXPIRY_MS},
        "features": {}
    })
}

fn health() -> Value {
    json!({
        "cluster_name": CLUSTER,
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0
    })
}

fn cat_health(head: bool) -> Response {
    let now = crate::now_ms() / 1000;
    let text = if head {
        String::new()
    } else {
        format!("{now} 00:00:00 {CLUSTER} green 1 1 0 0 0 0 0 0 - 100.0%\n")
    };
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp
}

fn nodes(version: &str) -> Value {
    json!({
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": CLUSTER,
        "nodes": {"logway": {"name": CLUSTER, "version": version, "roles": ["data", "ingest", "master"]}}
    })
}

fn authenticate() -> Value {
    json!({"username": "logway", "roles": [], "enabled": true, "authentication_type": "token"})
}

fn acknowledged() -> Value {
    json!({"acknowledged": true})
}

fn template(kind: &str, name: &str) -> Value {
    match kind {
        "_index_template" => json!({"index_templates": [
            {"name": name, "index_template": {"index_patterns": [format!("{name}*")], "composed_of": []}}
        ]}),
        "_component_template" => json!({"component_templates": [
            {"name": name, "component_template": {"template": {}}}
        ]}),
        _ => {
            json!({ name: {"index_patterns": [format!("{name}*")], "settings": {}, "mappings": {}} })
        }
    }
}

fn data_stream(name: &str) -> Value {
    json!({"data_streams": [{
        "name": name,
        "timestamp_field": {"name": "@timestamp"},
        "indices": [],
        "generation": 1,
        "status": "GREEN",
        "template": name
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_what_they_check() {
        let v = info("8.19.0");
        assert_eq!(v["version"]["number"], "8.19.0");
        assert_eq!(v["version"]["build_flavor"], "default");
        assert_eq!(v["tagline"], "You Know, for Search");
        assert_eq!(license()["license"]["status"], "active");
        assert_eq!(license()["license"]["type"], "basic");
        for (method, path) in [
            (Method::GET, &["_license"][..]),
            (Method::HEAD, &["_index_template", "filebeat-8.19.0"][..]),
            (Method::GET, &["_ilm", "policy", "filebeat"][..]),
            (Method::GET, &["_data_stream", "filebeat-8.19.0"][..]),
            (Method::PUT, &["_ingest", "pipeline", "p"][..]),
            (Method::HEAD, &["logstash"][..]),
            (Method::GET, &["_cat", "health"][..]),
        ] {
            let resp = answer(&method, path, "8.19.0").expect("answered");
            assert_eq!(resp.status(), StatusCode::OK, "{method} {path:?}");
        }
        assert!(answer(&Method::GET, &["_search"], "8.19.0").is_none());
        assert!(answer(&Method::POST, &["_bulk"], "8.19.0").is_none());
    }
}
