//! Object stores: where archived objects go.
//!
//! [`ObjectStore`] has two implementations, a local directory
//! ([`local::LocalStore`], the embedded default) and S3 ([`s3::S3Store`]).
//! Timeouts, retries and metrics are decorators around any store
//! ([`Timeout`], [`Retry`], [`Metered`]), not code inside them; [`build`]
//! stacks them as the config says. One conformance suite
//! (`tests/object_store.rs`) runs against both implementations.

pub mod local;
pub mod s3;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::telemetry::{Metrics, OpLabel, StoreOpLabels};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no object `{0}`")]
    NotFound(String),
    /// Worth retrying: timeouts, connection errors, 5xx, throttling.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: access denied, no such bucket, bad request.
    #[error("{0}")]
    Permanent(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// An object's key and size, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// A flat key → bytes store. Keys use `/` as separator; `list` returns
/// every object whose key starts with the prefix, sorted by key.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes an object whole (replacing one with the same key).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// The "directories" one level under `prefix` (which ends in `/`):
    /// distinct key prefixes up to the next `/`, sorted, each ending in `/`.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Deletes an object; deleting a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Where the objects go, for logs (`s3://bucket/prefix`, a path).
    fn describe(&self) -> String;
}

/// Fails a call that takes longer than `limit`, as a transient error.
pub struct Timeout<S> {
    pub inner: S,
    pub limit: Duration,
}

impl<S: ObjectStore> Timeout<S> {
    async fn run<T>(
        &self,
        op: &str,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.limit, f)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Transient(format!(
                    "{op} timed out after {:?}",
                    self.limit
                )))
            })
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for Timeout<S> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.run("put", self.inner.put(key, body)).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.run("get", self.inner.get(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.run("list", self.inner.list(prefix)).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.run("list", self.inner.list_dirs(prefix)).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run("delete", self.inner.delete(key)).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Retries transient errors with exponential backoff (100 ms doubling,
/// at most 5 s between tries), `attempts` tries in all.
pub struct Retry<S> {
    pub inner: S,
    pub attempts: u32,
}

impl<S: ObjectStore> Retry<S> {
    async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if e.is_retryable() && attempt < self.attempts => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for Retry<S> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.run(|| self.inner.put(key, body.clone())).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.run(|| self.inner.get(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.run(|| self.inner.list(prefix)).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.run(|| self.inner.list_dirs(prefix)).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(|| self.inner.delete(key)).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Counts every call by operation and outcome, and times it
/// (`logway_object_store_requests_total`, `…_duration_seconds`).
pub struct Metered<S> {
    pub inner: S,
    pub metrics: Arc<Metrics>,
}

impl<S: ObjectStore> Metered<S> {
    async fn run<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = f.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::NotFound(_)) => "not_found",
            Err(StoreError::Transient(_)) => "transient_error",
            Err(StoreError::Permanent(_)) => "permanent_error",
        };
        self.metrics
            .object_store_requests
            .get_or_create(&StoreOpLabels {
                op: op.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.metrics
            .object_store_duration
            .get_or_create(&OpLabel { op: op.into() })
            .observe(start.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for Metered<S> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.run("put", self.inner.put(key, body)).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.run("get", self.inner.get(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.run("list", self.inner.list(prefix)).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.run("list", self.inner.list_dirs(prefix)).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run("delete", self.inner.delete(key)).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The configured store, wrapped: metrics outermost (one count per call
/// the archive makes), then retries, then a timeout per attempt.
pub async fn build(
    config: &crate::archive::config::ArchiveConfig,
    data_dir: &std::path::Path,
    metrics: Arc<Metrics>,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let timeout = config.request_timeout;
    let attempts = config.max_attempts.max(1);
    let wrap = |inner: Box<dyn ObjectStore>| -> Arc<dyn ObjectStore> {
        Arc::new(Metered {
            inner: Retry {
                inner: Timeout {
                    inner,
                    limit: timeout,
                },
                attempts,
            },
            metrics,
        })
    };
    Ok(match &config.s3 {
        Some(s3) => wrap(Box::new(s3::S3Store::new(s3).await?)),
        None => {
            let dir = config
                .local_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("archive"));
            wrap(Box::new(local::LocalStore::new(dir)?))
        }
    })
}

#[async_trait]
impl ObjectStore for Box<dyn ObjectStore> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        (**self).put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        (**self).get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        (**self).list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        (**self).list_dirs(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
