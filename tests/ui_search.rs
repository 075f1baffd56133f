//! What the UI's Explore page asks search: cursor paging, query error
//! positions, the histogram by level, field names and top values.

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_by_cursor_through_events_sharing_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    // 10 events at one millisecond, 10 at another, 7 at their own.
    let mut lines = Vec::new();
    for i in 0..27 {
        let ts = match i {
            0..10 => "2026-11-30T10:00:00.500Z".to_string(),
            10..20 => "2026-11-30T09:00:00.250Z".to_string(),
            n => format!("2026-11-30T08:00:{:02}.000Z", n),
        };
        lines.push(json!({"timestamp": ts, "message": format!("paged event {i}")}));
    }
    t.post_lines("/web", A_INGEST, &lines).await;
    t.search_until(A_ADMIN, &[("q", "paged")], 27).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor = String::new();
    for page in 0.. {
        assert!(page < 20, "paging never ends");
        let (status, body) = t
            .get_status(
                "/api/v1/search",
                A_ADMIN,
                &[("q", "paged"), ("limit", "4"), ("search_after", &cursor)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["total"], 27,
            "the total counts every match on every page"
        );
        for hit in body["hits"].as_array().unwrap() {
            seen.push((
                hit["timestamp"].as_str().unwrap().to_string(),
                hit["message"].as_str().unwrap().to_string(),
            ));
        }
        match body["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut messages: Vec<&str> = seen.iter().map(|(_, m)| m.as_str()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 27, "every event once: {seen:?}");
    assert_eq!(seen.len(), 27, "no event twice: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {seen:?}"
    );
    let (status, body) = t
        .get_status("/api/v1/search", A_ADMIN, &[("search_after", "yesterday")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("search_after")
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_syntax_error_says_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let (status, body) = t
        .get_status(
            "/api/v1/search",
            A_ADMIN,
            &[("q", "level:error AND (service:x")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let at = body["error"]["position"].as_u64().expect("a position");
    assert!((16..=26).contains(&at), "{body}");
    // Positions count characters, not bytes.
    let (_, body) = t
        .get_status("/api/v1/search", A_ADMIN, &[("q", "héllo AND (")])
        .await;
    assert_eq!(body["error"]["position"], 11, "{body}");
    // A range of two kinds over numbers is a 400, not a panic in tantivy.
    t.post_lines(
        "/web",
        A_INGEST,
        &[json!({"message": "ranged", "n": 3, "g": 2.5})],
    )
    .await;
    t.search_until(A_ADMIN, &[("q", "ranged")], 1).await;
    for q in [
        "fields.n:[1 TO 2.5]",
        "fields.g:[1 TO 2.5]",
        "fields.g:[1.0 TO 2.5]",
        "fields.n:[-5 TO 2.5]",
    ] {
        let (status, body) = t.get_status("/api/v1/search", A_ADMIN, &[("q", q)]).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("one kind"),
            "{body}"
        );
    }
    let (status, body) = t
        .get_status("/api/v1/search", A_ADMIN, &[("q", "fields.g:[0.5 TO 2.5]")])
        .await;
    assert_eq!((status, body["total"].as_u64()), (200, Some(1)), "{body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_histogram_splits_by_level_and_fields_give_names_and_top_values() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let mut lines = Vec::new();
    for i in 0..30 {
        let (level, service) = match i % 3 {
            0 => ("error", "checkout"),
            1 => ("info", "checkout"),
            _ => ("info", "cart"),
        };
        lines.push(json!({"level": level, "service": service, "message": format!("sidebar {i}"),
                          "http": {"status": 200 + (i % 2) * 300}, "user": {"id": format!("u{}", i % 4)}}));
    }
    lines.push(json!({"message": "sidebar without level"}));
    t.post_lines("/web", A_INGEST, &lines).await;
    t.search_until(A_ADMIN, &[("q", "sidebar")], 31).await;

    let (status, h) = t
        .get_status(
            "/api/v1/histogram",
            A_ADMIN,
            &[("q", "sidebar"), ("from", "now-10m"), ("by", "level")],
        )
        .await;
    assert_eq!(status, 200, "{h}");
    let mut by_level = std::collections::BTreeMap::<String, u64>::new();
    let mut total = 0;
    for b in h["buckets"].as_array().unwrap() {
        total += b["count"].as_u64().unwrap();
        let mut sum = 0;
        for (level, n) in b["by"].as_object().unwrap() {
            *by_level.entry(level.clone()).or_default() += n.as_u64().unwrap();
            sum += n.as_u64().unwrap();
        }
        assert_eq!(
            sum,
            b["count"].as_u64().unwrap(),
            "a bucket's levels add up"
        );
    }
    assert_eq!(total, 31);
    assert_eq!(by_level.get("error"), Some(&10));
    assert_eq!(by_level.get("info"), Some(&20));
    assert_eq!(by_level.get(""), Some(&1), "events without a level");
    let (status, _) = t
        .get_status("/api/v1/histogram", A_ADMIN, &[("by", "host")])
        .await;
    assert_eq!(status, 400);

    let (status, names) = t
        .get_status("/api/v1/fields", A_ADMIN, &[("type", "web_logs")])
        .await;
    assert_eq!(status, 200, "{names}");
    let names: Vec<&str> = names["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for n in ["level", "service", "http.status", "user.id"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }

    let (status, v) = t
        .get_status(
            "/api/v1/fields/values",
            A_ADMIN,
            &[("field", "service"), ("q", "sidebar")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 31);
    assert_eq!(v["values"][0], json!({"value": "checkout", "count": 20}));
    assert_eq!(v["values"][1], json!({"value": "cart", "count": 10}));
    let (_, v) = t
        .get_status(
            "/api/v1/fields/values",
            A_ADMIN,
            &[("field", "user.id"), ("q", "level:error"), ("size", "2")],
        )
        .await;
    assert_eq!(v["total"], 10);
    assert_eq!(v["values"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["other"],
        10 - v["values"][0]["count"].as_u64().unwrap() - v["values"][1]["count"].as_u64().unwrap()
    );
    let (_, v) = t
        .get_status(
            "/api/v1/fields/values",
            A_ADMIN,
            &[("field", "http.status")],
        )
        .await;
    assert_eq!(v["values"][0]["count"], 15, "{v}");
    let (status, v) = t
        .get_status("/api/v1/fields/values", A_ADMIN, &[("field", "message")])
        .await;
    assert_eq!(status, 400, "{v}");

    // Another tenant sees none of it.
    let (_, v) = t
        .get_status("/api/v1/fields/values", B_ADMIN, &[("field", "service")])
        .await;
    assert_eq!(v["total"], 0, "{v}");
    let (_, names) = t.get_status("/api/v1/fields", B_ADMIN, &[]).await;
    assert!(!names.to_string().contains("user.id"), "{names}");
    t.stop().await;
}
