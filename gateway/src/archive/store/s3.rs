//! S3 (and S3-compatible servers) as an object store, via aws-sdk-s3.
//!
//! Credentials are static (`access_key_id` / `secret_access_key` in the
//! config) or the standard AWS chain (environment, profile, web identity,
//! instance metadata). `endpoint_url` and `force_path_style` point it at
//! MinIO, s3s, Ceph and the like. Objects at or above
//! `multipart_threshold_bytes` go up as a multipart upload driven here
//! (aborted on failure, so no parts are left behind). Upload checksums
//! follow `checksums`: `when_supported` (the SDK default, CRC32 trailers)
//! or `when_required`, for servers that reject those trailers.
//!
//! Errors are sorted for the [`super::Retry`] decorator: timeouts,
//! connection failures, 429 and 5xx are transient; other 4xx permanent.

use async_trait::async_trait;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{ObjectMeta, ObjectStore, StoreError};
use crate::archive::config::{S3Checksums, S3Config};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    multipart_threshold: usize,
    part_bytes: usize,
}

impl S3Store {
    pub async fn new(config: &S3Config) -> Result<S3Store, StoreError> {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(config.region.clone()));
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.0.clone(),
                None,
                None,
                "logway-config",
            ));
        }
        let shared = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(match config.checksums {
                S3Checksums::WhenSupported => RequestChecksumCalculation::WhenSupported,
                S3Checksums::WhenRequired => RequestChecksumCalculation::WhenRequired,
            });
        if let Some(url) = &config.endpoint_url {
            b = b.endpoint_url(url);
        }
        Ok(S3Store {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            bucket: config.bucket.clone(),
            multipart_threshold: config.multipart_threshold_bytes,
            part_bytes: config.multipart_part_bytes.max(5 * 1024 * 1024),
        })
    }

    /// Every page of a listing (followed through continuation tokens).
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<ListObjectsV2Output>, StoreError> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify("list", prefix, e))?;
            let next = page
                .next_continuation_token()
                .filter(|_| page.is_truncated() == Some(true))
                .map(str::to_string);
            pages.push(page);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(pages),
            }
        }
    }

    async fn put_multipart(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("create multipart upload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Transient(format!("S3 gave no upload id for {key}")))?
            .to_string();
        let result = async {
            let mut parts = Vec::new();
            for (i, start) in (0..body.len()).step_by(self.part_bytes).enumerate() {
                let number = i as i32 + 1;
                let chunk = body.slice(start..(start + self.part_bytes).min(body.len()));
                let part = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(chunk))
                    .send()
                    .await
                    .map_err(|e| classify("upload part", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_string))
                        .build(),
                );
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("complete multipart upload", key, e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }
}

fn classify<E, R>(op: &str, key: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = e.raw_response().map(HasStatus::status);
    let message = format!("S3 {op} `{key}`: {}", DisplayErrorContext(&e));
    match (&e, status) {
        (_, Some(404)) => StoreError::NotFound(key.to_string()),
        (SdkError::ServiceError(_), Some(s)) if s == 429 || s >= 500 => {
            StoreError::Transient(message)
        }
        (SdkError::ServiceError(_), _) | (SdkError::ConstructionFailure(_), _) => {
            StoreError::Permanent(message)
        }
        _ => StoreError::Transient(message),
    }
}

/// The HTTP status of a raw SDK response.
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        if body.len() >= self.multipart_threshold {
            return self.put_multipart(key, body).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("put", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("get", key, e))?;
        let data =
            out.body.collect().await.map_err(|e| {
                StoreError::Transient(format!("S3 get `{key}`: reading the body: {e}"))
            })?;
        Ok(data.into_bytes())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut out = Vec::new();
        for page in self.list_pages(prefix, None).await? {
            out.extend(page.contents().iter().filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            }));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for page in self.list_pages(prefix, Some("/")).await? {
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("delete", key, e) {
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
