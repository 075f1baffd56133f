//! One conformance suite for every object store: the local directory and
//! S3 (against a real S3-protocol server, s3s-fs, on 127.0.0.1), plus the
//! retry decorator riding out an outage.

use std::sync::Arc;

use crate::common::*;
use bytes::Bytes;
use logway::archive::store::local::LocalStore;
use logway::archive::store::s3::S3Store;
use logway::archive::store::{ObjectStore, Retry, StoreError, Timeout};
use logway::config::S3Checksums;

async fn conformance(store: &dyn ObjectStore) {
    let d = store.describe();
    // Missing objects.
    assert!(
        matches!(store.get("p/none").await, Err(StoreError::NotFound(_))),
        "{d}"
    );
    assert!(store.list("p/").await.unwrap().is_empty(), "{d}");
    store
        .delete("p/none")
        .await
        .expect("deleting a missing object is fine");

    // Put, get, overwrite.
    let key = "p/tenant=a/type=web/dt=2026-11-21/hour=09/00000000000000000000-00000000000000000100.ndjson.zst";
    store.put(key, Bytes::from_static(b"first")).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), "first", "{d}");
    store
        .put(key, Bytes::from_static(b"second, longer"))
        .await
        .unwrap();
    assert_eq!(store.get(key).await.unwrap(), "second, longer", "{d}");
    store.put("p/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get("p/empty").await.unwrap().len(), 0, "{d}");

    // Listing: by prefix, sorted, with sizes, nothing outside the prefix.
    for k in [
        "p/tenant=a/type=web/dt=2026-11-20/hour=23/x",
        "p/tenant=b/type=web/dt=2026-11-21/hour=00/y",
        "q/other",
    ] {
        store.put(k, Bytes::from_static(b"12345")).await.unwrap();
    }
    let all: Vec<String> = store
        .list("p/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        all,
        [
            "p/empty",
            "p/tenant=a/type=web/dt=2026-11-20/hour=23/x",
            key,
            "p/tenant=b/type=web/dt=2026-11-21/hour=00/y",
        ],
        "{d}"
    );
    let a = store.list("p/tenant=a/").await.unwrap();
    assert_eq!(a.len(), 2, "{d}");
    assert_eq!(a[0].size, 5, "{d}");
    assert_eq!(a[1].size, "second, longer".len() as u64, "{d}");
    // A prefix that ends mid-segment matches like S3 does.
    assert_eq!(
        store
            .list("p/tenant=a/type=web/dt=2026-11-2")
            .await
            .unwrap()
            .len(),
        2,
        "{d}"
    );
    assert_eq!(
        store
            .list("p/tenant=a/type=web/dt=2026-11-21")
            .await
            .unwrap()
            .len(),
        1,
        "{d}"
    );

    // One level of "directories".
    assert_eq!(
        store.list_dirs("p/").await.unwrap(),
        ["p/tenant=a/", "p/tenant=b/"],
        "{d}"
    );
    assert_eq!(
        store.list_dirs("p/tenant=a/type=web/").await.unwrap(),
        [
            "p/tenant=a/type=web/dt=2026-11-20/",
            "p/tenant=a/type=web/dt=2026-11-21/"
        ],
        "{d}"
    );
    assert!(store.list_dirs("nothing/").await.unwrap().is_empty(), "{d}");

    // A large object (multipart on S3: above the 16 MiB threshold).
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    store.put("p/big", Bytes::from(big.clone())).await.unwrap();
    assert!(
        store.get("p/big").await.unwrap() == big,
        "{d}: big object differs"
    );

    // More objects than one S3 listing page (1,000) holds.
    for i in 0..1_050 {
        store
            .put(&format!("page/k{i:05}"), Bytes::from_static(b"p"))
            .await
            .unwrap();
    }
    let paged = store.list("page/").await.unwrap();
    assert_eq!(paged.len(), 1_050, "{d}");
    assert_eq!(paged[1_049].key, "page/k01049", "{d}");

    // Delete.
    store.delete(key).await.unwrap();
    assert!(
        matches!(store.get(key).await, Err(StoreError::NotFound(_))),
        "{d}"
    );
    assert_eq!(store.list("p/tenant=a/").await.unwrap().len(), 1, "{d}");
}

#[tokio::test]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("archive")).unwrap();
    conformance(&store).await;
    // Keys cannot climb out of the directory.
    assert!(matches!(
        store.put("../escape", Bytes::new()).await,
        Err(StoreError::Permanent(_))
    ));
}

#[tokio::test]
async fn s3_store_conforms_against_a_real_s3_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(dir.path()).await;
    for checksums in [S3Checksums::WhenSupported, S3Checksums::WhenRequired] {
        let mut config = server.s3_config();
        config.checksums = checksums;
        let store = S3Store::new(&config).await.unwrap();
        conformance(&store).await;
        // Start over for the next mode.
        for o in store.list("").await.unwrap() {
            store.delete(&o.key).await.unwrap();
        }
    }
    // Wrong credentials are a permanent error, not something to retry.
    let mut config = server.s3_config();
    config.secret_access_key = Some(logway::config::Secret("wrong-secret-000".into()));
    let store = S3Store::new(&config).await.unwrap();
    let err = store.put("x", Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn retries_ride_out_a_short_outage() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(dir.path()).await;
    let config = server.s3_config();
    let store = Arc::new(Retry {
        inner: Timeout {
            inner: S3Store::new(&config).await.unwrap(),
            limit: std::time::Duration::from_secs(5),
        },
        attempts: 8,
    });
    let addr = server.stop().await;
    // Down: a put fails with a transient error once its tries are spent...
    let short = Retry {
        inner: S3Store::new(&config).await.unwrap(),
        attempts: 2,
    };
    let err = short.put("k", Bytes::from_static(b"v")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // ...and one with enough tries succeeds once the server is back.
    let put = {
        let store = store.clone();
        tokio::spawn(async move { store.put("k", Bytes::from_static(b"v")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let server = S3Server::start_at(dir.path(), addr).await;
    put.await.unwrap().unwrap();
    assert_eq!(store.get("k").await.unwrap(), "v");
    server.stop().await;
}

/// Cold retention with a test clock: expired days go, younger days and
/// types without retention stay, on both stores.
#[tokio::test]
async fn cold_retention_deletes_expired_days_and_nothing_younger() {
    use logway::archive::{PartitionKey, retention};
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3")).await;
    let stores: Vec<Box<dyn ObjectStore>> = vec![
        Box::new(LocalStore::new(dir.path().join("local")).unwrap()),
        Box::new(S3Store::new(&server.s3_config()).await.unwrap()),
    ];
    let now = time::macros::datetime!(2026-11-21 12:00 UTC);
    let mut config = logway::config::ArchiveConfig::default();
    config.retention_by_type.insert(
        "debug_logs".into(),
        std::time::Duration::from_secs(5 * 86_400),
    );
    config
        .tenant_retention
        .insert("b".into(), std::time::Duration::from_secs(2 * 86_400));
    let metrics = logway::telemetry::Metrics::new();
    for store in &stores {
        let mut keys = Vec::new();
        for (ty, days_ago) in [
            ("debug_logs", 10),
            ("debug_logs", 6),
            ("debug_logs", 4),
            ("debug_logs", 0),
            ("audit", 30),
        ] {
            let received = now - time::Duration::days(days_ago);
            let key = PartitionKey::new("a", ty, received).object_key("logs", 0, 10, "w");
            store.put(&key, Bytes::from_static(b"x")).await.unwrap();
            keys.push(key);
        }
        // Tenant b's own default (2 days) applies where no type setting does.
        let b_key = |ty: &str| {
            PartitionKey::new("b", ty, now - time::Duration::days(3)).object_key("logs", 0, 10, "w")
        };
        let (b_app, b_debug) = (b_key("app_logs"), b_key("debug_logs"));
        for k in [&b_app, &b_debug] {
            store.put(k, Bytes::from_static(b"x")).await.unwrap();
        }
        let deleted = retention::enforce(store.as_ref(), &config, now, &metrics)
            .await
            .unwrap();
        assert_eq!(deleted, 3, "{}", store.describe());
        let left: Vec<String> = store
            .list("logs/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        // 10 and 6 days ago are past 5 days (from the end of their day); 4
        // days is not; b's app_logs of 3 days ago are past b's 2 days, its
        // debug_logs follow the type's 5.
        assert_eq!(
            left,
            [
                keys[4].clone(),
                keys[2].clone(),
                keys[3].clone(),
                b_debug.clone()
            ],
            "{}",
            store.describe()
        );
    }
    server.stop().await;
}
