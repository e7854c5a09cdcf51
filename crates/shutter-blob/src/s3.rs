//! The scale-out `BlobStore`: any S3-compatible object store (AWS S3, MinIO, Garage, s3s).
//!
//! Requests are presigned with `rusty-s3` (SigV4, no I/O) and sent with `reqwest`. Layout
//! in the bucket, readable by any S3 tool:
//!
//! ```text
//! files/<id>/original                  files/<id>
//! files/<id>/variants/<variant>        files/<id>/<variant>
//! uploads/<id>/<start offset, 20 digits>   the upload of files/<id> in progress, in chunks
//! direct/<id>/object                   where a client's presigned PUT or multipart upload lands
//! direct/<id>/multipart                the id of that multipart upload, while it is open
//! shutter-ping/<random>                a readiness probe, removed at once
//! ```
//!
//! **Direct uploads.** A ticket on S3 is a presigned `PUT` of `direct/<id>/object` (its
//! `Content-Type` and `Content-Length` signed) or, from `storage.multipart_threshold` on, a
//! multipart upload of that key created at ticket time with a presigned URL per part. On
//! `complete` the bytes are copied inside the store into the upload's chunk slot
//! (`uploads/<id>/…0`) and the direct object deleted; the checks then read the chunk and the
//! commit copies it to `files/<id>/original`. A `PUT` through the ticket's URL, valid until
//! it expires, can only ever write `direct/<id>/object` again, never the checked bytes.
//!
//! (`files/<id>` is never an object itself: a store that maps keys to paths, as s3s-fs and
//! MinIO on a plain disk do, could not then hold `files/<id>/…` beside it.)
//!
//! **Uploads in progress.** S3 has no append, and the parts of a multipart upload cannot be
//! read back before it completes, yet a resumed upload must re-read what it has (to hash it
//! after a restart and to sniff its content). So the bytes of an upload are kept as
//! ordinary objects, *chunks*, named by the offset they start at. Every chunk but the last
//! is at least [`PART_MIN`] (S3's smallest multipart part); the last, the *tail*, is
//! rewritten whole as it grows, until it reaches that size. Committing completes a
//! multipart upload to `files/<id>/original` whose parts are server-side copies of the
//! chunks (`UploadPartCopy`), so the bytes cross the network once more inside the store,
//! never through Shutter. The chunks form the partial object up to the first gap: a crash
//! half way through cutting off unacknowledged bytes leaves at most stale chunks past a
//! gap, which the next open removes.
//!
//! Memory: a writer holds at most one part ([`PART_SIZE`] plus one incoming chunk); reads
//! stream the response bodies as they arrive.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use rusty_s3::actions::{ListObjectsV2, ListObjectsV2Response, ObjectIdentifier};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use shutter_app::ports::{
    BlobError, BlobRead, BlobResult, BlobStore, ByteStream, DirectMultipart, DirectUpload,
    PartialWriter,
};
use shutter_core::config::S3StorageConfig;
use shutter_core::{Id, Timestamp};

use crate::key::BlobKey;

/// The smallest part S3 accepts in a multipart upload (all but the last part).
pub const PART_MIN: usize = 5 * 1024 * 1024;
/// A writer sends its buffer as a chunk once it holds this much.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Uploads that may hold a part in memory at once, per process: the memory of uploads in
/// progress is bounded by this times [`PART_SIZE`] (plus one incoming chunk each), however
/// many clients upload. One more waits, its body unread, until a part is sent or an upload
/// ends.
pub const BUFFERING_WRITERS: usize = 8;
/// How long the presigned URL of one server-side request stays valid.
const REQUEST_TTL: Duration = Duration::from_secs(300);
/// Keys deleted by one `DeleteObjects` request (S3's limit).
const DELETE_BATCH: usize = 1000;
const FILES: &str = "files/";
const UPLOADS: &str = "uploads/";
const DIRECT: &str = "direct/";
const PING: &str = "shutter-ping/";

/// Where the store is and who Shutter is to it, resolved from `storage.s3.*` (see
/// `shutter_core::config::S3StorageConfig::fill_from_env` for the AWS variables).
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    /// The endpoint as configured (or AWS's for the region), for messages.
    endpoint: String,
    credentials: Credentials,
    http: reqwest::Client,
    /// A permit per writer holding bytes (see [`BUFFERING_WRITERS`]).
    buffers: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("endpoint", &self.inner.bucket.base_url().as_str())
            .field("bucket", &self.inner.bucket.name())
            .finish_non_exhaustive()
    }
}

/// One chunk of an upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chunk {
    start: u64,
    len: u64,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

impl S3BlobStore {
    /// A store over the configured bucket. Does no I/O: [`BlobStore::ping`] tells whether
    /// the bucket answers.
    pub fn new(config: &S3StorageConfig) -> anyhow::Result<Self> {
        let region = config.region.clone().unwrap_or_else(|| "us-east-1".into());
        let endpoint = match &config.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        let endpoint_url: url::Url = endpoint
            .parse()
            .with_context(|| format!("storage.s3.endpoint {endpoint:?} is not a URL"))?;
        let bucket_name = config
            .bucket
            .clone()
            .context("storage.s3.bucket is not set")?;
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint_url, style, bucket_name, region)
            .map_err(|e| anyhow::anyhow!("storage.s3: cannot address the bucket: {e}"))?;
        let (Some(key), Some(secret)) = (&config.access_key, &config.secret_key) else {
            anyhow::bail!("storage.s3.access_key and storage.s3.secret_key must be set");
        };
        let credentials = match &config.session_token {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .build()
            .context("building the S3 HTTP client")?;
        Ok(S3BlobStore {
            inner: Arc::new(Inner {
                bucket,
                endpoint,
                credentials,
                http,
                buffers: Arc::new(tokio::sync::Semaphore::new(BUFFERING_WRITERS)),
            }),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.inner.bucket.name()
    }

    /// The endpoint the bucket is reached at (`storage.s3.endpoint`, or AWS's for the
    /// region).
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Creates the bucket; one that exists and is ours already is fine. (For tests and
    /// first-time setup: Shutter never creates buckets on its own.)
    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        let action = self.inner.bucket.create_bucket(&self.inner.credentials);
        let body = action.body();
        let url = action.sign(REQUEST_TTL);
        let response = self
            .inner
            .http
            .put(url)
            .body(body)
            .send()
            .await
            .context("creating the bucket")?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        if text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        anyhow::bail!(
            "creating bucket {} failed: {status} {}",
            self.bucket(),
            excerpt(&text)
        )
    }

    fn object_key(key: &BlobKey) -> String {
        match key.variant() {
            Some(variant) => format!("{FILES}{}/variants/{variant}", key.id()),
            None => format!("{FILES}{}/original", key.id()),
        }
    }

    fn direct_key(id: Id) -> String {
        format!("{DIRECT}{id}/object")
    }

    fn direct_marker_key(id: Id) -> String {
        format!("{DIRECT}{id}/multipart")
    }

    /// Leave to hold a part's bytes in memory (see [`BUFFERING_WRITERS`]).
    async fn buffer_permit(&self) -> BlobResult<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.buffers)
            .acquire_owned()
            .await
            .map_err(|e| BlobError::Other(anyhow::Error::new(e)))
    }

    /// The id of a ticket's multipart upload while it is open.
    async fn direct_multipart_id(&self, id: Id) -> BlobResult<Option<String>> {
        let text = found(self.get_text(&Self::direct_marker_key(id)).await)?;
        Ok(text.map(|t| t.trim().to_owned()))
    }

    /// Starts a multipart upload of `key`; returns its id.
    async fn create_multipart(&self, key: &str, content_type: Option<&str>) -> BlobResult<String> {
        let url = self
            .inner
            .bucket
            .create_multipart_upload(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        let mut request = self.inner.http.post(url);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let text = self
            .send_for_text("starting a multipart upload", request)
            .await?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| BlobError::Other(anyhow::anyhow!("unreadable multipart upload: {e}")))?;
        Ok(created.upload_id().to_owned())
    }

    /// Completes a multipart upload of `key` with the parts' ETags, numbered from 1.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> BlobResult<()> {
        let action = self.inner.bucket.complete_multipart_upload(
            Some(&self.inner.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(REQUEST_TTL);
        let body = action.body();
        self.send_for_text(
            "completing a multipart upload",
            self.inner.http.post(url).body(body),
        )
        .await
        .map(drop)
    }

    /// A small object's bytes as text.
    async fn get_text(&self, key: &str) -> BlobResult<String> {
        let url = self
            .inner
            .bucket
            .get_object(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        self.send_for_text("reading an object", self.inner.http.get(url))
            .await
    }

    /// The parts of an open multipart upload, `(number, size, etag)`, in order.
    async fn list_parts(&self, key: &str, upload_id: &str) -> BlobResult<Vec<(u32, u64, String)>> {
        let mut parts = Vec::new();
        let mut marker: Option<u16> = None;
        loop {
            let mut action =
                self.inner
                    .bucket
                    .list_parts(Some(&self.inner.credentials), key, upload_id);
            if let Some(marker) = marker {
                action.set_part_number_marker(marker);
            }
            let url = action.sign(REQUEST_TTL);
            let text = self
                .send_for_text("listing the parts of an upload", self.inner.http.get(url))
                .await?;
            // Read by hand: some stores leave out elements (an ETag) that rusty-s3's parser
            // requires.
            let before = parts.len();
            for block in text.split("<Part>").skip(1) {
                let block = block.split("</Part>").next().unwrap_or_default();
                let number = xml_value(block, "PartNumber").and_then(|n| n.trim().parse().ok());
                let size = xml_value(block, "Size").and_then(|n| n.trim().parse().ok());
                let (Some(number), Some(size)) = (number, size) else {
                    return Err(BlobError::Other(anyhow::anyhow!(
                        "unreadable part listing: {}",
                        excerpt(&text)
                    )));
                };
                parts.push((number, size, xml_value(block, "ETag").unwrap_or_default()));
            }
            let truncated = xml_value(&text, "IsTruncated").is_some_and(|t| t.trim() == "true");
            let next = xml_value(&text, "NextPartNumberMarker").and_then(|n| n.trim().parse().ok());
            match next {
                Some(next) if truncated && parts.len() > before && Some(next) != marker => {
                    marker = Some(next)
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }

    /// Aborts a ticket's multipart upload that was never completed (the store would keep its
    /// parts, unlisted, for ever), then forgets it.
    async fn abort_direct_multipart(&self, id: Id) -> BlobResult<()> {
        let Some(upload_id) = self.direct_multipart_id(id).await? else {
            return Ok(());
        };
        let url = self
            .inner
            .bucket
            .abort_multipart_upload(
                Some(&self.inner.credentials),
                &Self::direct_key(id),
                &upload_id,
            )
            .sign(REQUEST_TTL);
        found(
            self.send("aborting a multipart upload", self.inner.http.delete(url))
                .await,
        )?;
        self.delete_object(&Self::direct_marker_key(id)).await
    }

    fn chunk_key(id: Id, start: u64) -> String {
        format!("{UPLOADS}{id}/{start:020}")
    }

    /// The id of a `files/<id>` key, refusing variants: only a file's own bytes upload.
    fn upload_id(key: &str) -> BlobResult<Id> {
        let key = BlobKey::parse(key)?;
        if key.variant().is_some() {
            return Err(BlobError::Other(anyhow::anyhow!(
                "partial objects exist only for files/<id> keys, not {key}"
            )));
        }
        Ok(key.id())
    }

    /// Sends a request and turns every failure into a `BlobError` (see [`classify`]).
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> BlobResult<Response> {
        let response = request.send().await.map_err(|e| transport_error(e, what))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(classify(status, &text, what))
    }

    /// A response whose body is read whole (small XML answers), checked for the error that
    /// copies and multipart completions may send with a 200.
    async fn send_for_text(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> BlobResult<String> {
        let response = self.send(what, request).await?;
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(e, what))?;
        if text.contains("<Error>") {
            return Err(classify(
                reqwest::StatusCode::INTERNAL_SERVER_ERROR,
                &text,
                what,
            ));
        }
        Ok(text)
    }

    /// Every object under `prefix`, in key order, page by page.
    async fn list(
        &self,
        prefix: &str,
    ) -> BlobResult<Vec<rusty_s3::actions::list_objects_v2::ListObjectsContent>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action: ListObjectsV2<'_> = self
                .inner
                .bucket
                .list_objects_v2(Some(&self.inner.credentials));
            action.with_prefix(prefix);
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let url = action.sign(REQUEST_TTL);
            let text = self
                .send_for_text("listing objects", self.inner.http.get(url))
                .await?;
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| BlobError::Other(anyhow::anyhow!("unreadable object listing: {e}")))?;
            let ListObjectsV2Response {
                contents,
                next_continuation_token,
                ..
            } = page;
            all.extend(contents);
            match next_continuation_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// The chunks of an upload, in order, up to the first gap; and any stale ones past it.
    async fn chunks(&self, id: Id) -> BlobResult<(Vec<Chunk>, Vec<String>)> {
        let prefix = format!("{UPLOADS}{id}/");
        let mut chunks = Vec::new();
        let mut stale = Vec::new();
        for object in self.list(&prefix).await? {
            let start = object
                .key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.parse::<u64>().ok());
            let Some(start) = start else {
                stale.push(object.key);
                continue;
            };
            let expected = chunks.last().map_or(0, Chunk::end);
            if start == expected && stale.is_empty() {
                chunks.push(Chunk {
                    start,
                    len: object.size.unwrap_or(0),
                });
            } else {
                stale.push(object.key);
            }
        }
        Ok((chunks, stale))
    }

    async fn put_object(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        let url = self
            .inner
            .bucket
            .put_object(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        self.send("storing an object", self.inner.http.put(url).body(bytes))
            .await
            .map(drop)
    }

    /// Streams `range` (inclusive start, exclusive end) of an object, or all of it.
    async fn get_object(&self, key: &str, range: Option<(u64, u64)>) -> BlobResult<BlobRead> {
        if let Some((start, end)) = range {
            if start > end {
                return Err(BlobError::Other(anyhow::anyhow!(
                    "range {start}..{end} is reversed"
                )));
            }
            if start == end {
                // HTTP cannot ask for no bytes; the length tells whether the range is in.
                let total_len = self.head_len(key).await?;
                return empty_range(start, end, total_len);
            }
        }
        let url = self
            .inner
            .bucket
            .get_object(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        let mut request = self.inner.http.get(url);
        if let Some((start, end)) = range {
            request = request.header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1));
        }
        let response = match self.send("reading an object", request).await {
            Err(BlobError::Other(e)) if is_unsatisfiable_range(&e) => {
                let total_len = self.head_len(key).await?;
                let (start, end) = range.unwrap_or((0, 0));
                return empty_range(start, end, total_len);
            }
            other => other?,
        };
        let total_len = match response.headers().get(reqwest::header::CONTENT_RANGE) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.parse().ok())
                .ok_or_else(|| {
                    BlobError::Other(anyhow::anyhow!("unreadable Content-Range {value:?}"))
                })?,
            None => response.content_length().ok_or_else(|| {
                BlobError::Other(anyhow::anyhow!("an object read without a length"))
            })?,
        };
        let stream: ByteStream = Box::pin(response.bytes_stream().map_err(std::io::Error::other));
        Ok(BlobRead { stream, total_len })
    }

    async fn head_len(&self, key: &str) -> BlobResult<u64> {
        let url = self
            .inner
            .bucket
            .head_object(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        let response = self
            .send("reading an object's length", self.inner.http.head(url))
            .await?;
        response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BlobError::Other(anyhow::anyhow!("HEAD answered without a length")))
    }

    async fn delete_object(&self, key: &str) -> BlobResult<()> {
        let url = self
            .inner
            .bucket
            .delete_object(Some(&self.inner.credentials), key)
            .sign(REQUEST_TTL);
        found(
            self.send("deleting an object", self.inner.http.delete(url))
                .await,
        )
        .map(drop)
    }

    /// Deletes the keys, a batch per request; absent ones are fine.
    async fn delete_keys(&self, keys: Vec<String>) -> BlobResult<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            if let [key] = batch {
                self.delete_object(key).await?;
                continue;
            }
            let objects: Vec<ObjectIdentifier> = batch
                .iter()
                .map(|k| ObjectIdentifier::new(k.clone()))
                .collect();
            let action = self
                .inner
                .bucket
                .delete_objects(Some(&self.inner.credentials), objects.iter());
            let url = action.sign(REQUEST_TTL);
            let (body, md5) = action.body_with_md5();
            // An answer naming any key it could not delete is an error (`send_for_text`).
            self.send_for_text(
                "deleting objects",
                self.inner
                    .http
                    .post(url)
                    .header("Content-MD5", md5)
                    .body(body),
            )
            .await?;
        }
        Ok(())
    }

    /// Everything under a prefix, gone.
    async fn delete_prefix(&self, prefix: &str) -> BlobResult<()> {
        let keys = self
            .list(prefix)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        self.delete_keys(keys).await
    }

    /// `source` copied into `target` inside the store.
    async fn copy_object(&self, source: &str, target: &str) -> BlobResult<()> {
        let mut action = self
            .inner
            .bucket
            .put_object(Some(&self.inner.credentials), target);
        let copy_source = self.copy_source(source);
        action
            .headers_mut()
            .insert("x-amz-copy-source", copy_source.clone());
        let url = action.sign(REQUEST_TTL);
        self.send_for_text(
            "copying an object",
            self.inner
                .http
                .put(url)
                .header("x-amz-copy-source", copy_source),
        )
        .await
        .map(drop)
    }

    fn copy_source(&self, key: &str) -> String {
        format!("/{}/{key}", self.bucket())
    }

    /// `target` assembled from the chunks by a multipart upload of server-side copies.
    async fn assemble(&self, chunks: &[Chunk], id: Id, target: &str) -> BlobResult<()> {
        let upload_id = self.create_multipart(target, None).await?;
        let copied = self.copy_parts(chunks, id, target, &upload_id).await;
        let completed = match copied {
            Ok(etags) => self.complete_multipart(target, &upload_id, &etags).await,
            Err(e) => Err(e),
        };
        if completed.is_err() {
            let url = self
                .inner
                .bucket
                .abort_multipart_upload(Some(&self.inner.credentials), target, &upload_id)
                .sign(REQUEST_TTL);
            if let Err(e) = self
                .send("aborting a multipart upload", self.inner.http.delete(url))
                .await
            {
                tracing::warn!(error = %e, upload_id, "could not abort a multipart upload");
            }
        }
        completed
    }

    async fn copy_parts(
        &self,
        chunks: &[Chunk],
        id: Id,
        target: &str,
        upload_id: &str,
    ) -> BlobResult<Vec<String>> {
        let mut etags = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let number = u16::try_from(i + 1).map_err(|_| {
                BlobError::Other(anyhow::anyhow!("an upload of more than 65535 chunks"))
            })?;
            let source = self.copy_source(&Self::chunk_key(id, chunk.start));
            let mut action = self.inner.bucket.upload_part(
                Some(&self.inner.credentials),
                target,
                number,
                upload_id,
            );
            action
                .headers_mut()
                .insert("x-amz-copy-source", source.clone());
            let url = action.sign(REQUEST_TTL);
            let text = self
                .send_for_text(
                    "copying a part",
                    self.inner.http.put(url).header("x-amz-copy-source", source),
                )
                .await?;
            let etag = xml_value(&text, "ETag").ok_or_else(|| {
                BlobError::Other(anyhow::anyhow!(
                    "a part copy without an ETag: {}",
                    excerpt(&text)
                ))
            })?;
            etags.push(etag);
        }
        Ok(etags)
    }
}

type Response = reqwest::Response;

#[async_trait]
impl BlobStore for S3BlobStore {
    fn takes_direct_uploads(&self) -> bool {
        true
    }

    async fn direct_upload(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        ttl: Duration,
        multipart_threshold: u64,
    ) -> BlobResult<Option<DirectUpload>> {
        let id = Self::upload_id(key)?;
        let target = Self::direct_key(id);
        let mut put = self
            .inner
            .bucket
            .put_object(Some(&self.inner.credentials), &target);
        put.headers_mut()
            .insert("content-type", content_type.to_owned());
        // Clients send no Content-Length with an empty body, so a signed one could not match.
        if size > 0 {
            put.headers_mut().insert("content-length", size.to_string());
        }
        let url = put.sign(ttl).to_string();
        let headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        if size < multipart_threshold.max(1) {
            return Ok(Some(DirectUpload {
                url,
                headers,
                multipart: None,
            }));
        }
        // At most 10 000 parts (S3's limit), each at least a part's minimum.
        let part_size = (PART_SIZE as u64).max(size.div_ceil(10_000));
        let count = size.div_ceil(part_size).max(1);
        let upload_id = self.create_multipart(&target, Some(content_type)).await?;
        self.put_object(&Self::direct_marker_key(id), Bytes::from(upload_id.clone()))
            .await?;
        let mut parts = Vec::new();
        for number in 1..=count {
            let number = u16::try_from(number)
                .map_err(|_| BlobError::Other(anyhow::anyhow!("more than 65535 parts")))?;
            let url = self
                .inner
                .bucket
                .upload_part(Some(&self.inner.credentials), &target, number, &upload_id)
                .sign(ttl);
            parts.push((u32::from(number), url.to_string()));
        }
        Ok(Some(DirectUpload {
            url,
            headers,
            multipart: Some(DirectMultipart { part_size, parts }),
        }))
    }

    async fn take_direct_upload(
        &self,
        key: &str,
        parts: Option<Vec<(u32, String)>>,
    ) -> BlobResult<()> {
        let id = Self::upload_id(key)?;
        let target = Self::direct_key(id);
        if let Some(upload_id) = self.direct_multipart_id(id).await? {
            let mut etags: Vec<(u32, String)> = match parts {
                Some(parts) => parts,
                None => self
                    .list_parts(&target, &upload_id)
                    .await?
                    .into_iter()
                    .map(|(number, _, etag)| (number, etag))
                    .collect(),
            };
            etags.sort_by_key(|p| p.0);
            let numbered = etags.iter().enumerate().all(|(i, p)| p.0 as usize == i + 1);
            if etags.is_empty() || !numbered {
                return Err(BlobError::NotFound);
            }
            let etags: Vec<String> = etags.into_iter().map(|p| p.1).collect();
            match self.complete_multipart(&target, &upload_id, &etags).await {
                Ok(()) => {}
                // Parts missing, too small or not as listed: the bytes are not all there.
                Err(BlobError::Other(e)) if is_incomplete_upload(&e) => {
                    return Err(BlobError::NotFound)
                }
                Err(e) => return Err(e),
            }
            self.delete_object(&Self::direct_marker_key(id)).await?;
        }
        self.head_len(&target).await?;
        self.discard_partial(key).await?;
        self.copy_object(&target, &Self::chunk_key(id, 0)).await?;
        self.delete_object(&target).await
    }

    async fn direct_upload_progress(&self, key: &str) -> BlobResult<Option<u64>> {
        let id = Self::upload_id(key)?;
        let target = Self::direct_key(id);
        match self.direct_multipart_id(id).await? {
            Some(upload_id) => Ok(found(self.list_parts(&target, &upload_id).await)?
                .map(|parts| parts.iter().map(|p| p.1).sum())),
            None => found(self.head_len(&target).await),
        }
    }

    fn presigned_get(
        &self,
        key: &str,
        ttl: Duration,
        content_type: &str,
        content_disposition: &str,
    ) -> Option<String> {
        let key = BlobKey::parse(key).ok()?;
        let object = Self::object_key(&key);
        let mut action = self
            .inner
            .bucket
            .get_object(Some(&self.inner.credentials), &object);
        action
            .query_mut()
            .insert("response-content-type", content_type.to_owned());
        action.query_mut().insert(
            "response-content-disposition",
            content_disposition.to_owned(),
        );
        Some(action.sign(ttl).to_string())
    }

    async fn open_partial(&self, key: &str, offset: u64) -> BlobResult<Box<dyn PartialWriter>> {
        let id = Self::upload_id(key)?;
        let (chunks, stale) = self.chunks(id).await?;
        if offset == 0 {
            let mut all: Vec<String> = chunks
                .iter()
                .map(|c| Self::chunk_key(id, c.start))
                .collect();
            all.extend(stale);
            self.delete_keys(all).await?;
            // An empty first chunk: the upload exists, with no bytes yet.
            self.put_object(&Self::chunk_key(id, 0), Bytes::new())
                .await?;
            return Ok(Box::new(S3PartialWriter::new(
                self.clone(),
                id,
                0,
                BytesMut::new(),
                None,
            )));
        }
        let len = chunks.last().map_or(0, Chunk::end);
        if chunks.is_empty() || len < offset {
            return Err(BlobError::NotFound);
        }
        // The chunk the offset falls in (or ends), and everything after it, which goes.
        let at = chunks
            .iter()
            .position(|c| c.start < offset && offset <= c.end())
            .unwrap_or(chunks.len() - 1);
        let chunk = chunks[at].clone();
        let mut doomed: Vec<String> = chunks[at + 1..]
            .iter()
            .map(|c| Self::chunk_key(id, c.start))
            .collect();
        doomed.extend(stale);
        let keep = offset - chunk.start;
        let keep_usize = usize::try_from(keep)
            .map_err(|_| BlobError::Other(anyhow::anyhow!("a chunk too large for memory")))?;
        let cut = offset < chunk.end();
        let writer = if cut || keep_usize < PART_MIN {
            // Read back what stays of the chunk: to rewrite it shorter, or to keep growing it.
            let permit = self.buffer_permit().await?;
            let chunk_key = Self::chunk_key(id, chunk.start);
            let read = self.get_object(&chunk_key, Some((0, keep))).await?;
            let mut tail = BytesMut::with_capacity(keep_usize);
            let mut stream = read.stream;
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| BlobError::Unavailable(e.into()))?;
                tail.extend_from_slice(&bytes);
            }
            if tail.len() != keep_usize {
                return Err(BlobError::Other(anyhow::anyhow!(
                    "chunk {chunk_key} gave {} bytes, {keep} expected",
                    tail.len()
                )));
            }
            if cut {
                // Atomic in S3: readers see the old chunk or the shorter one.
                self.put_object(&chunk_key, Bytes::copy_from_slice(&tail))
                    .await?;
            }
            if keep_usize < PART_MIN {
                S3PartialWriter::new(self.clone(), id, chunk.start, tail, Some(permit))
            } else {
                S3PartialWriter::new(self.clone(), id, offset, BytesMut::new(), None)
            }
        } else {
            S3PartialWriter::new(self.clone(), id, offset, BytesMut::new(), None)
        };
        self.delete_keys(doomed).await?;
        Ok(Box::new(writer))
    }

    async fn partial_len(&self, key: &str) -> BlobResult<Option<u64>> {
        let id = Self::upload_id(key)?;
        let (chunks, _) = self.chunks(id).await?;
        Ok(chunks.last().map(Chunk::end))
    }

    async fn read_partial(&self, key: &str) -> BlobResult<BlobRead> {
        let id = Self::upload_id(key)?;
        let (chunks, _) = self.chunks(id).await?;
        let Some(last) = chunks.last() else {
            return Err(BlobError::NotFound);
        };
        let total_len = last.end();
        let store = self.clone();
        let stream = futures::stream::iter(chunks.into_iter().filter(|c| c.len > 0))
            .then(move |chunk| {
                let store = store.clone();
                async move {
                    store
                        .get_object(&S3BlobStore::chunk_key(id, chunk.start), None)
                        .await
                        .map(|read| read.stream)
                        .map_err(std::io::Error::other)
                }
            })
            .try_flatten();
        Ok(BlobRead {
            stream: Box::pin(stream),
            total_len,
        })
    }

    async fn commit_partial(&self, key: &str) -> BlobResult<()> {
        let id = Self::upload_id(key)?;
        let (chunks, stale) = self.chunks(id).await?;
        if chunks.is_empty() {
            return Err(BlobError::NotFound);
        }
        let target = Self::object_key(&BlobKey::file(id));
        let parts: Vec<Chunk> = chunks.iter().filter(|c| c.len > 0).cloned().collect();
        if parts.len() <= 1 {
            // One chunk (or none: an empty file) is copied whole.
            self.copy_object(&Self::chunk_key(id, chunks[0].start), &target)
                .await?;
        } else {
            self.assemble(&parts, id, &target).await?;
        }
        let mut done: Vec<String> = chunks
            .iter()
            .map(|c| Self::chunk_key(id, c.start))
            .collect();
        done.extend(stale);
        self.delete_keys(done).await
    }

    async fn discard_partial(&self, key: &str) -> BlobResult<()> {
        let id = Self::upload_id(key)?;
        self.delete_prefix(&format!("{UPLOADS}{id}/")).await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        let key = BlobKey::parse(key)?;
        self.put_object(&Self::object_key(&key), bytes).await
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> BlobResult<BlobRead> {
        let key = BlobKey::parse(key)?;
        self.get_object(&Self::object_key(&key), range).await
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        let key = BlobKey::parse(key)?;
        if key.variant().is_some() {
            return self.delete_object(&Self::object_key(&key)).await;
        }
        self.abort_direct_multipart(key.id()).await?;
        self.delete_prefix(&format!("{FILES}{}/", key.id())).await?;
        self.delete_prefix(&format!("{UPLOADS}{}/", key.id()))
            .await?;
        self.delete_prefix(&format!("{DIRECT}{}/", key.id())).await
    }

    async fn list_file_ids(&self) -> BlobResult<Vec<(Id, Timestamp)>> {
        let mut newest: std::collections::HashMap<Id, Timestamp> = Default::default();
        for prefix in [FILES, UPLOADS, DIRECT] {
            for object in self.list(prefix).await? {
                let id = object.key[prefix.len()..]
                    .split('/')
                    .next()
                    .and_then(|text| text.parse::<Id>().ok().filter(|id| id.to_string() == text));
                let Some(id) = id else { continue };
                let modified = object
                    .last_modified
                    .as_deref()
                    .and_then(Timestamp::parse_rfc3339)
                    .unwrap_or_else(Timestamp::now);
                let slot = newest.entry(id).or_insert(modified);
                *slot = (*slot).max(modified);
            }
        }
        let mut ids: Vec<(Id, Timestamp)> = newest.into_iter().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn ping(&self) -> BlobResult<()> {
        // Reachable: the bucket answers a listing. A write alone would not tell, as some
        // stores (s3s-fs) make a missing bucket on the first write to it.
        let mut action = self
            .inner
            .bucket
            .list_objects_v2(Some(&self.inner.credentials));
        action.with_prefix(PING);
        action.with_max_keys(1);
        let url = action.sign(REQUEST_TTL);
        match self
            .send_for_text("listing the bucket", self.inner.http.get(url))
            .await
        {
            Ok(_) => {}
            Err(e @ (BlobError::NotFound | BlobError::Other(_))) => {
                return Err(BlobError::Unavailable(
                    anyhow::Error::new(e)
                        .context(format!("bucket {} refused a listing", self.bucket())),
                ))
            }
            Err(e) => return Err(e),
        }
        // Writable is what matters, and only writing tells.
        let probe = format!("{PING}{}", Id::new());
        let written = self.put_object(&probe, Bytes::from_static(b"ping")).await;
        let written = match written {
            // Any answer but "unavailable" means the bucket cannot be used: it is not there,
            // or not ours to write.
            Err(e @ (BlobError::NotFound | BlobError::Other(_))) => Err(BlobError::Unavailable(
                anyhow::Error::new(e).context(format!("bucket {} refused a write", self.bucket())),
            )),
            other => other,
        };
        written?;
        self.delete_object(&probe).await
    }
}

/// Appends to an upload: bytes gather in the tail, which goes to the store as a chunk when
/// it reaches [`PART_SIZE`] or is synced.
struct S3PartialWriter {
    store: S3BlobStore,
    id: Id,
    /// Where the tail starts.
    tail_start: u64,
    tail: BytesMut,
    /// The tail holds bytes the store does not have yet.
    dirty: bool,
    /// Held while the tail holds bytes.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl S3PartialWriter {
    fn new(
        store: S3BlobStore,
        id: Id,
        tail_start: u64,
        tail: BytesMut,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Self {
        S3PartialWriter {
            store,
            id,
            tail_start,
            tail,
            dirty: false,
            permit,
        }
    }

    fn len(&self) -> u64 {
        self.tail_start + self.tail.len() as u64
    }

    /// Stores the tail as its chunk; a tail of a part's size or more is final and the next
    /// bytes start a new chunk.
    async fn flush(&mut self) -> BlobResult<()> {
        if self.dirty && !self.tail.is_empty() {
            let key = S3BlobStore::chunk_key(self.id, self.tail_start);
            if self.tail.len() >= PART_MIN {
                let n = self.tail.len() as u64;
                let bytes = self.tail.split().freeze();
                self.store.put_object(&key, bytes).await?;
                self.tail_start += n;
                self.permit = None;
            } else {
                self.store
                    .put_object(&key, Bytes::copy_from_slice(&self.tail))
                    .await?;
            }
        }
        self.dirty = false;
        Ok(())
    }
}

#[async_trait]
impl PartialWriter for S3PartialWriter {
    async fn write(&mut self, chunk: &[u8]) -> BlobResult<()> {
        if self.permit.is_none() {
            self.permit = Some(self.store.buffer_permit().await?);
        }
        self.tail.extend_from_slice(chunk);
        self.dirty = true;
        if self.tail.len() >= PART_SIZE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn sync(&mut self) -> BlobResult<u64> {
        self.flush().await?;
        Ok(self.len())
    }
}

/// `NotFound` as `None`: for what may or may not exist.
fn found<T>(result: BlobResult<T>) -> BlobResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(BlobError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An empty read at `start` if the range is inside the object, else the caller's mistake.
fn empty_range(start: u64, end: u64, total_len: u64) -> BlobResult<BlobRead> {
    if start > total_len {
        return Err(BlobError::Other(anyhow::anyhow!(
            "range {start}..{end} is outside an object of {total_len} bytes"
        )));
    }
    Ok(BlobRead {
        stream: Box::pin(futures::stream::empty()),
        total_len,
    })
}

/// A request that got no answer (or an answer cut off): the store is unavailable. The URL is
/// left out of the message: presigned, it would carry a signature into the logs.
fn transport_error(error: reqwest::Error, what: &str) -> BlobError {
    BlobError::Unavailable(anyhow::Error::new(error.without_url()).context(what.to_owned()))
}

/// A refusal of the store, by status and S3 error code: a missing object is `NotFound`; a
/// store that cannot serve (down, overloaded, the bucket gone, credentials refused) is
/// `Unavailable`; the rest are errors of the one request.
fn classify(status: reqwest::StatusCode, body: &str, what: &str) -> BlobError {
    let code = xml_value(body, "Code").unwrap_or_default();
    let error = anyhow::anyhow!("{what}: {status} {code} {}", excerpt(body));
    match code.as_str() {
        "NoSuchKey" | "NoSuchUpload" => return BlobError::NotFound,
        "NoSuchBucket"
        | "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "SlowDown"
        | "ServiceUnavailable"
        | "InternalError" => return BlobError::Unavailable(error),
        _ => {}
    }
    if status == reqwest::StatusCode::NOT_FOUND && code.is_empty() {
        // A HEAD has no body to name the error: a missing object.
        return BlobError::NotFound;
    }
    if status.is_server_error()
        || status == reqwest::StatusCode::FORBIDDEN
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        return BlobError::Unavailable(error);
    }
    BlobError::Other(error)
}

fn is_incomplete_upload(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    [
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "NoSuchUpload",
    ]
    .iter()
    .any(|code| text.contains(code))
}

fn is_unsatisfiable_range(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    text.contains("416") || text.contains("InvalidRange")
}

/// The text of the first `<tag>` element, unescaped enough for ETags and error codes.
fn xml_value(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

fn excerpt(text: &str) -> &str {
    let end = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn errors_are_told_apart_by_code_and_status() {
        let body = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        let nf = reqwest::StatusCode::NOT_FOUND;
        assert!(matches!(
            classify(nf, &body("NoSuchKey"), "x"),
            BlobError::NotFound
        ));
        assert!(matches!(classify(nf, "", "x"), BlobError::NotFound));
        assert!(matches!(
            classify(nf, &body("NoSuchBucket"), "x"),
            BlobError::Unavailable(_)
        ));
        let forbidden = reqwest::StatusCode::FORBIDDEN;
        assert!(matches!(
            classify(forbidden, &body("SignatureDoesNotMatch"), "x"),
            BlobError::Unavailable(_)
        ));
        let bad = reqwest::StatusCode::BAD_REQUEST;
        assert!(matches!(
            classify(bad, &body("InvalidArgument"), "x"),
            BlobError::Other(_)
        ));
        let busy = reqwest::StatusCode::SERVICE_UNAVAILABLE;
        assert!(matches!(classify(busy, "", "x"), BlobError::Unavailable(_)));
    }

    #[test]
    fn xml_values_are_found_and_unescaped() {
        let body = "<CopyPartResult><LastModified>t</LastModified><ETag>&quot;abc&quot;</ETag></CopyPartResult>";
        assert_eq!(xml_value(body, "ETag").as_deref(), Some("\"abc\""));
        assert_eq!(xml_value(body, "Code"), None);
    }
}
