//! The web UI in a real browser: headless Debian Chromium driven by
//! Playwright for Python (`tests/clients/ui_py.py`, launched with the
//! system Chromium; nothing is downloaded). The script seeds its own events
//! through the real ingest API, then signs in, searches, zooms the
//! histogram, expands an event, filters by a field value, opens a request
//! trace across two types, watches the live tail, uploads and deletes a
//! filter, starts and cancels a replay, signs out, and checks that hostile
//! log content executes nothing and that one tenant never sees another's
//! events. Screenshots of the main views go to
//! `<target>/ui-screenshots/` for reviewers (they are not assertions).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        r#"
[[tenants]]
name = "acme"
ingest_keys = ["acme-ingest"]
admin_keys = ["acme-admin"]

[[tenants]]
name = "globex"
ingest_keys = ["globex-ingest"]
admin_keys = ["globex-admin"]
"#,
    );
    let bulk = write_bulk_archive(dir.path());
    let t = TestGateway::start(config).await;
    let wasm = dir.path().join("filter_keep.wasm");
    std::fs::write(&wasm, filter_wasm("keep")).unwrap();
    let shots = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .expect("test binary sits in <target>/<profile>/deps")
        .join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cmd = python_client(
        "ui_py.py",
        &[
            &t.url,
            "--wasm",
            wasm.to_str().unwrap(),
            "--shots",
            shots.to_str().unwrap(),
            "--bulk-type",
            BULK_TYPE,
            "--bulk-objects",
            &bulk.to_string(),
        ],
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        cmd.output().expect("the browser script starts")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser script failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // Every scenario the issue names, each passing (the script stops at
    // the first failure).
    for scenario in [
        "csp",
        "sign_in",
        "query",
        "query_error",
        "zoom",
        "expand",
        "keyboard",
        "field_filter",
        "trace",
        "saved",
        "live_tail",
        "filters",
        "replay",
        "xss",
        "sign_out",
        "isolation",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("OK {scenario}")),
            "no passing `{scenario}` scenario in:\n{stdout}"
        );
    }
    t.stop().await;
}

/// The log type of the archived objects a replay is cancelled over.
const BULK_TYPE: &str = "bulk_logs";

/// Archived objects of tenant `acme`, received this hour, in the archive
/// writer's layout and format (NDJSON + zstd under the local archive
/// directory): enough events (200 objects of 5,000; a debug build replays
/// about 100,000 a second) that a replay of them
/// is still running when the page cancels it. Returns the object count.
fn write_bulk_archive(data_dir: &std::path::Path) -> usize {
    const OBJECTS: usize = 200;
    const EVENTS: usize = 5_000;
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let at = logway::event::format_time(now);
    let hour = data_dir.join("archive").join(format!(
        "{}hour={:02}",
        logway::archive::day_prefix(
            logway::archive::config::DEFAULT_ARCHIVE_PREFIX,
            "acme",
            BULK_TYPE,
            now.date()
        ),
        now.hour()
    ));
    std::fs::create_dir_all(&hour).unwrap();
    for o in 0..OBJECTS {
        let mut lines = String::new();
        for e in 0..EVENTS {
            let id = o * EVENTS + e;
            lines.push_str(&format!(
                "{{\"id\":\"bulk-{id:08}\",\"timestamp\":\"{at}\",\"received_at\":\"{at}\",\
                 \"type\":\"{BULK_TYPE}\",\"level\":\"info\",\"message\":\"bulk event {id}\"}}\n"
            ));
        }
        let (start, end) = (o * 1_000_000, (o + 1) * 1_000_000);
        std::fs::write(
            hour.join(format!("{start:020}-{end:020}-bulk.ndjson.zst")),
            zstd::encode_all(lines.as_bytes(), 3).unwrap(),
        )
        .unwrap();
    }
    OBJECTS
}
