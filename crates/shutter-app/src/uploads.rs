//! Receiving bytes: a presigned `PUT` or tus `PATCH`es stream into the file's partial object
//! while SHA-256 and MD5 are computed and bytes counted; the last byte triggers the checks
//! (size, checksums, sniffed content, image header) and the atomic commit. Also downloads and
//! the sweeper of abandoned uploads and orphaned objects.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use futures::StreamExt;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::model::{Failure, FileRecord};
use shutter_core::{ErrorCode, Id};

use crate::accounts::Principal;
use crate::auth::hex;
use crate::files::{blob_key, ContentAccess};
use crate::ports::{
    BlobError, BlobRead, ByteStream, Event, EventKind, PartialWriter, UploadResult,
};
use crate::signing::SignedParts;
use crate::{AppError, AppResult, Shutter};

use crate::events::PROGRESS_INTERVAL;
/// An upload without progress for this long has lost its writer (see
/// [`Shutter::recover_stalled_uploads`]).
const STALLED_AFTER_MS: i64 = 60_000;
/// At start-up on a shared database: any upload idle this long was cut off.
pub const STALLED_AT_START_MS: i64 = 5_000;
/// How much of the start of a complete image is read back for sniffing and probing.
const PREFIX_LEN: u64 = 256 * 1024;
/// The most of a file read to find an image's header behind its metadata.
const MAX_HEADER_READ: u64 = 16 * 1024 * 1024;

/// Running digests of an upload. A few hundred bytes: resumable uploads keep them between
/// PATCHes, so they hold none of the file's bytes (the content checks read those back from
/// the partial object once it is complete).
#[derive(Clone, Default)]
pub(crate) struct Digests {
    sha256: Sha256,
    md5: Md5,
    len: u64,
}

impl Digests {
    fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.update_all_but_md5(chunk);
    }

    fn update_all_but_md5(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.len += chunk.len() as u64;
    }
}

/// MD5 of a stream of chunks, hashed on a blocking thread a batch behind the caller.
struct Md5Pipeline {
    /// The state, while no batch is being hashed.
    idle: Option<Md5>,
    running: Option<tokio::task::JoinHandle<Md5>>,
    batch: Vec<bytes::Bytes>,
    batch_len: usize,
}

impl Md5Pipeline {
    /// Chunks are handed over in batches of this many bytes (small uploads never leave the
    /// caller's thread).
    const BATCH: usize = 1024 * 1024;

    fn new(md5: Md5) -> Self {
        Md5Pipeline {
            idle: Some(md5),
            running: None,
            batch: Vec::new(),
            batch_len: 0,
        }
    }

    /// The state once the batch in flight, if any, is hashed.
    async fn state(&mut self) -> Md5 {
        if let Some(handle) = self.running.take() {
            match handle.await {
                Ok(md5) => return md5,
                // A panic while hashing is a bug: it goes on here, as if it had happened
                // on this task.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: only when the runtime shuts down, and with it this process's
                // in-memory upload state.
                Err(e) => tracing::warn!(error = %e, "MD5 hashing was cancelled"),
            }
        }
        self.idle.take().unwrap_or_default()
    }

    async fn push(&mut self, chunk: bytes::Bytes) {
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= Self::BATCH {
            let mut md5 = self.state().await;
            let batch = std::mem::take(&mut self.batch);
            self.batch_len = 0;
            self.running = Some(tokio::task::spawn_blocking(move || {
                for chunk in &batch {
                    md5.update(chunk);
                }
                md5
            }));
        }
    }

    async fn finish(mut self) -> Md5 {
        let mut md5 = self.state().await;
        for chunk in &self.batch {
            md5.update(chunk);
        }
        md5
    }
}

/// In-process state of uploads in progress: which files have a writer now (one at a time),
/// and the digests of resumable uploads between PATCHes.
#[derive(Default)]
pub(crate) struct UploadState {
    busy: Mutex<HashSet<Id>>,
    digests: Mutex<HashMap<Id, Digests>>,
}

/// Held while a request writes a file's bytes; a second writer gets `conflict`.
struct UploadGuard<'a> {
    state: &'a UploadState,
    id: Id,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.state.busy.lock() {
            busy.remove(&self.id);
        }
    }
}

/// A per-request checksum of one tus PATCH (`Upload-Checksum`).
#[derive(Clone, Debug)]
pub enum ChunkChecksum {
    Sha1(Vec<u8>),
    Md5(Vec<u8>),
    Sha256(Vec<u8>),
}

enum ChunkHasher {
    Sha1(Sha1),
    Md5(Md5),
    Sha256(Sha256),
}

impl ChunkHasher {
    fn for_checksum(c: &ChunkChecksum) -> Self {
        match c {
            ChunkChecksum::Sha1(_) => ChunkHasher::Sha1(Sha1::new()),
            ChunkChecksum::Md5(_) => ChunkHasher::Md5(Md5::new()),
            ChunkChecksum::Sha256(_) => ChunkHasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => h.update(chunk),
            ChunkHasher::Md5(h) => h.update(chunk),
            ChunkHasher::Sha256(h) => h.update(chunk),
        }
    }

    fn matches(self, expected: &ChunkChecksum) -> bool {
        let got = match self {
            ChunkHasher::Sha1(h) => h.finalize().to_vec(),
            ChunkHasher::Md5(h) => h.finalize().to_vec(),
            ChunkHasher::Sha256(h) => h.finalize().to_vec(),
        };
        let want = match expected {
            ChunkChecksum::Sha1(d) | ChunkChecksum::Md5(d) | ChunkChecksum::Sha256(d) => d,
        };
        &got == want
    }
}

/// Why a complete upload's content was refused.
struct ContentProblem {
    code: ErrorCode,
    detail: String,
    /// The image's pixel count, when that was the problem.
    pixels: Option<u64>,
}

impl ContentProblem {
    fn mismatch(detail: String) -> Self {
        ContentProblem {
            code: ErrorCode::ContentMismatch,
            detail,
            pixels: None,
        }
    }
}

/// Why streaming a body stopped early.
enum IngestStop {
    /// More bytes than declared arrived.
    TooLarge,
    /// The client's body broke off (disconnect, timeout).
    Body(std::io::Error),
    Store(BlobError),
}

/// What a tus PATCH achieved.
#[derive(Clone, Debug)]
pub enum PatchOutcome {
    /// Bytes appended; the upload goes on from `offset` (or is complete when `file` is
    /// `ready`).
    Accepted { offset: u64, file: Box<FileRecord> },
    /// `Upload-Checksum` did not match: the PATCH's bytes were dropped; `offset` is unchanged.
    ChecksumMismatch { offset: u64 },
}

fn blob_error(err: BlobError) -> AppError {
    match err {
        BlobError::NotFound => AppError::not_found("stored bytes"),
        BlobError::Unavailable(e) => AppError::unavailable(e),
        BlobError::Other(e) => AppError::internal(e),
    }
}

impl Shutter {
    fn lock_upload(&self, id: Id) -> AppResult<UploadGuard<'_>> {
        let mut busy = self
            .uploads
            .busy
            .lock()
            .map_err(|_| AppError::internal(anyhow::anyhow!("upload lock poisoned")))?;
        if !busy.insert(id) {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "another upload to this file is in progress",
            ));
        }
        Ok(UploadGuard {
            state: &self.uploads,
            id,
        })
    }

    pub(crate) fn forget_upload_state(&self, id: Id) {
        if let Ok(mut d) = self.uploads.digests.lock() {
            d.remove(&id);
        }
    }

    /// Marks the file failed, drops its bytes and tells the owner.
    async fn fail_upload(&self, file: &FileRecord, code: ErrorCode, detail: String) -> AppError {
        let key = blob_key(file.id);
        if let Err(e) = self.blobs.discard_partial(&key).await {
            tracing::warn!(file.id = %file.id, error = %e, "could not remove a failed upload's bytes");
        }
        self.forget_upload_state(file.id);
        let failure = Failure {
            code,
            detail: detail.clone(),
        };
        match self
            .files
            .fail_file(file.id, failure, self.clock.now())
            .await
        {
            Ok(Some(failed)) => {
                metrics::counter!("uploads_finished_total", "outcome" => code.as_str())
                    .increment(1);
                self.publish_file_event(&failed, EventKind::FileFailed)
                    .await;
                // A post's photo failed: the post fails with it.
                if let Err(e) = self.after_media_settled(&failed).await {
                    tracing::warn!(file.id = %file.id, error = %e.message, "could not settle the post of a failed upload");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file.id = %file.id, error = %e, "could not mark an upload failed")
            }
        }
        tracing::info!(file.id = %file.id, code = code.as_str(), "upload failed");
        AppError::new(code, detail)
    }

    /// More bytes than declared arrived: the upload fails at once with `file_too_large`.
    async fn too_large(&self, file: &FileRecord, received: u64) -> AppError {
        let detail = format!("more than the declared {} bytes were sent", file.size);
        let err = self
            .fail_upload(file, ErrorCode::FileTooLarge, detail)
            .await;
        err.with_limit("declared_size", file.size, received)
    }

    /// Streams `body` into `writer` until it ends, updating digests, counting against the
    /// declared size and announcing progress at most every 100 ms.
    async fn ingest(
        &self,
        file: &FileRecord,
        writer: &mut dyn PartialWriter,
        digests: &mut Digests,
        mut body: ByteStream,
        mut chunk_hasher: Option<&mut ChunkHasher>,
    ) -> Result<(), IngestStop> {
        // MD5 is the slowest step of the loop (about three times SHA-256's cost), so it runs
        // on a blocking thread, a batch of written chunks at a time, while the next chunks
        // are received, written and SHA-256-hashed here. Whatever ends the loop, every
        // written chunk is in the MD5 when this returns (a resumed tus upload goes on from
        // these digests).
        let mut md5 = Md5Pipeline::new(std::mem::take(&mut digests.md5));
        let mut last_progress = Instant::now();
        let received_before = digests.len;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(IngestStop::Body)?;
                if digests.len + chunk.len() as u64 > file.size {
                    return Err(IngestStop::TooLarge);
                }
                writer.write(&chunk).await.map_err(IngestStop::Store)?;
                digests.update_all_but_md5(&chunk);
                if let Some(h) = chunk_hasher.as_deref_mut() {
                    h.update(&chunk);
                }
                md5.push(chunk).await;
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = Instant::now();
                    self.announce_progress(file, digests.len).await;
                }
            }
            Ok(())
        }
        .await;
        digests.md5 = md5.finish().await;
        metrics::counter!("upload_received_bytes_total")
            .increment(digests.len.saturating_sub(received_before));
        outcome
    }

    async fn announce_progress(&self, file: &FileRecord, received: u64) {
        if let Err(e) = self
            .files
            .record_progress(file.id, received, self.clock.now())
            .await
        {
            tracing::warn!(file.id = %file.id, error = %e, "could not record upload progress");
        }
        if !self.progress_gate.admit(file.id) {
            return;
        }
        self.events
            .publish(Event {
                user_id: file.owner_id,
                kind: EventKind::FileProgress,
                file_id: Some(file.id),
                post_id: None,
                bytes_received: Some(received),
                size: Some(file.size),
                failure: None,
                at: self.clock.now(),
            })
            .await;
    }

    /// Checks a complete upload and makes it the file's object: declared checksums, sniffed
    /// content against a declared image type, the image header against the pixel limit.
    async fn finalize(&self, file: &FileRecord, digests: Digests) -> AppResult<FileRecord> {
        if digests.len < file.size {
            let detail = format!(
                "the upload ended after {} of {} bytes",
                digests.len, file.size
            );
            return Err(self
                .fail_upload(file, ErrorCode::SizeMismatch, detail)
                .await);
        }
        let sha256 = hex(&digests.sha256.finalize());
        let md5 = hex(&digests.md5.finalize());
        if file.declared_sha256.as_ref().is_some_and(|d| *d != sha256) {
            return Err(self
                .fail_upload(
                    file,
                    ErrorCode::ChecksumMismatch,
                    "the bytes do not match the declared sha256".into(),
                )
                .await);
        }
        if file.declared_md5.as_ref().is_some_and(|d| *d != md5) {
            return Err(self
                .fail_upload(
                    file,
                    ErrorCode::ChecksumMismatch,
                    "the bytes do not match the declared md5".into(),
                )
                .await);
        }
        let (width, height) = match self.check_content(file).await? {
            Ok(dims) => dims,
            Err(problem) => {
                let err = self.fail_upload(file, problem.code, problem.detail).await;
                return Err(match problem.pixels {
                    Some(actual) => {
                        err.with_limit("max_pixels", self.config.media.max_pixels, actual)
                    }
                    None => err,
                });
            }
        };
        let key = blob_key(file.id);
        self.blobs.commit_partial(&key).await.map_err(blob_error)?;
        self.forget_upload_state(file.id);
        let now = self.clock.now();
        // JPEG, PNG and WebP get variants: they go to `processing` with their job enqueued in
        // the same transaction; everything else is ready now.
        let processable =
            shutter_core::domain::ContentType::parse("content_type", &file.content_type)
                .is_ok_and(|ct| ct.is_processable_image());
        let completed = if processable {
            let premium = self
                .repo
                .user_by_id(file.owner_id)
                .await?
                .is_some_and(|u| u.tier == shutter_core::domain::Tier::Premium);
            let job = crate::ports::process_file_job(file.id, if premium { 10 } else { 0 }, now);
            let result = UploadResult {
                sha256,
                md5,
                status: FileStatus::Processing,
                width,
                height,
            };
            let done = self
                .media
                .complete_upload_for_processing(file.id, result, job, now)
                .await?;
            self.wake_workers();
            done
        } else {
            let result = UploadResult {
                sha256,
                md5,
                status: FileStatus::Ready,
                width,
                height,
            };
            self.files.complete_upload(file.id, result, now).await?
        };
        match completed {
            Some(done) => {
                tracing::info!(file.id = %done.id, size = done.size, status = done.status.as_str(), "upload complete");
                metrics::counter!("uploads_finished_total", "outcome" => "ok").increment(1);
                metrics::counter!("upload_stored_bytes_total").increment(done.size);
                let kind = if processable {
                    EventKind::FileProcessing
                } else {
                    EventKind::FileReady
                };
                self.publish_file_event(&done, kind).await;
                Ok(done)
            }
            None => {
                // Deleted while its last bytes arrived: its bytes go too.
                let _ = self.blobs.delete(&key).await;
                Err(AppError::not_found("file"))
            }
        }
    }

    /// The sniffed type must agree with a declared image type; images must have a readable
    /// header within the pixel limit. Returns the displayed dimensions of images (the outer
    /// error is a storage failure, the inner one a problem with the content).
    async fn check_content(
        &self,
        file: &FileRecord,
    ) -> AppResult<Result<(Option<u32>, Option<u32>), ContentProblem>> {
        let declared = file.content_type.as_str();
        let declared_image = matches!(
            declared,
            "image/jpeg" | "image/png" | "image/webp" | "image/gif"
        );
        if !declared_image {
            return Ok(Ok((None, None)));
        }
        let prefix = self
            .read_partial_prefix(file.id, PREFIX_LEN.min(file.size))
            .await
            .map_err(blob_error)?;
        Ok(self.check_image(file, &prefix).await)
    }

    async fn check_image(
        &self,
        file: &FileRecord,
        prefix: &[u8],
    ) -> Result<(Option<u32>, Option<u32>), ContentProblem> {
        let declared = file.content_type.as_str();
        let sniffed = shutter_media::sniff(prefix);
        if sniffed != Some(declared) {
            let found = sniffed.unwrap_or("unrecognised bytes");
            return Err(ContentProblem::mismatch(format!(
                "declared {declared} but the bytes are {found}"
            )));
        }
        let mut probed = shutter_media::probe(prefix);
        // Large metadata (ICC profiles, XMP) can push the frame header past the prefix kept
        // in memory: read as much of the file as the header needs, within a bound.
        if let Err(shutter_media::ProbeError::NeedMoreData { needed }) = probed {
            let have = prefix.len() as u64;
            if have < file.size && needed as u64 > have && (needed as u64) <= MAX_HEADER_READ {
                let longer = self
                    .read_partial_prefix(file.id, (needed as u64).min(file.size))
                    .await;
                probed = match longer {
                    Ok(bytes) => shutter_media::probe(&bytes),
                    Err(_) => probed,
                };
            }
        }
        let info = probed.map_err(|e| {
            ContentProblem::mismatch(format!("the image header is unreadable: {e}"))
        })?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        let max = self.config.media.max_pixels;
        if pixels > max {
            return Err(ContentProblem {
                code: ErrorCode::ImageTooLarge,
                detail: format!("the image has {pixels} pixels; at most {max} are allowed"),
                pixels: Some(pixels),
            });
        }
        Ok((Some(info.display_width()), Some(info.display_height())))
    }

    /// The first `len` bytes of a file's partial object.
    async fn read_partial_prefix(&self, id: Id, len: u64) -> Result<Vec<u8>, BlobError> {
        let mut read = self.blobs.read_partial(&blob_key(id)).await?;
        let mut out = Vec::with_capacity(len as usize);
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(|e| BlobError::Other(e.into()))?;
            let room = len as usize - out.len();
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() as u64 >= len {
                break;
            }
        }
        Ok(out)
    }

    /// `PUT` to a presigned upload URL: the whole file in one request.
    pub async fn upload_put(
        &self,
        id: Id,
        expires: i64,
        signature: &str,
        content_type: Option<&str>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> AppResult<FileRecord> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        let parts = SignedParts {
            method: "PUT",
            object: &id.to_string(),
            expires,
            size: Some(file.size),
            content_type: Some(&file.content_type),
        };
        let type_ok = content_type.is_none_or(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(&file.content_type)
        });
        if !self.signer.verify(parts, signature) || !type_ok {
            return Err(AppError::new(
                ErrorCode::InvalidSignature,
                "the upload URL's signature does not match",
            ));
        }
        if self.clock.now().unix_seconds() > expires || self.clock.now() > file.upload_expires_at {
            return Err(AppError::new(
                ErrorCode::UploadExpired,
                "the upload URL has expired",
            ));
        }
        if !file.status.is_open() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("the file is already {}", file.status.as_str()),
            ));
        }
        let _guard = self.lock_upload(id)?;
        if let Some(len) = content_length.filter(|len| *len > file.size) {
            let err = self
                .fail_upload(
                    &file,
                    ErrorCode::FileTooLarge,
                    format!("{len} bytes sent for a file declared as {}", file.size),
                )
                .await;
            return Err(err.with_limit("declared_size", file.size, len));
        }
        if !self.files.begin_upload(id, self.clock.now()).await? {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the file is not waiting for bytes",
            ));
        }
        let key = blob_key(id);
        let mut writer = self.blobs.open_partial(&key, 0).await.map_err(blob_error)?;
        let mut digests = Digests::default();
        match self
            .ingest(&file, writer.as_mut(), &mut digests, body, None)
            .await
        {
            Ok(()) => {}
            Err(IngestStop::TooLarge) => {
                drop(writer);
                return Err(self.too_large(&file, digests.len + 1).await);
            }
            Err(stop) => {
                // Interrupted: nothing half-written is kept; the same URL may be used again.
                drop(writer);
                let _ = self.blobs.discard_partial(&key).await;
                let _ = self.files.pause_upload(id, 0, self.clock.now()).await;
                return Err(match stop {
                    IngestStop::Store(e) => blob_error(e),
                    IngestStop::Body(e) => AppError::new(
                        ErrorCode::MalformedRequest,
                        format!("the upload broke off: {e}"),
                    ),
                    IngestStop::TooLarge => AppError::new(ErrorCode::FileTooLarge, "too large"),
                });
            }
        }
        writer.sync().await.map_err(blob_error)?;
        drop(writer);
        self.finalize(&file, digests).await
    }

    /// The file a tus request addresses, if `who` owns it and its upload window is open.
    pub async fn tus_file(&self, who: &Principal, id: Id) -> AppResult<FileRecord> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("upload"))?;
        if file.owner_id != who.id() {
            return Err(AppError::not_found("upload"));
        }
        if file.status.is_open() && self.clock.now() > file.upload_expires_at {
            return Err(AppError::new(
                ErrorCode::UploadExpired,
                "the upload has expired",
            ));
        }
        Ok(file)
    }

    /// Creates a file through tus (`POST /v1/tus`), with the same checks as `POST /v1/files`.
    pub async fn tus_create(
        &self,
        who: &Principal,
        input: crate::files::NewFileInput,
    ) -> AppResult<FileRecord> {
        let (view, _) = self.create_file(who, input).await?;
        Ok(view.file)
    }

    /// Appends one tus PATCH at `offset`, which must be where the upload stands.
    pub async fn tus_patch(
        &self,
        who: &Principal,
        id: Id,
        offset: u64,
        checksum: Option<ChunkChecksum>,
        body: ByteStream,
    ) -> AppResult<PatchOutcome> {
        let file = self.tus_file(who, id).await?;
        if !file.status.is_open() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("the upload is already {}", file.status.as_str()),
            ));
        }
        if offset != file.bytes_received {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!(
                    "Upload-Offset is {offset} but the upload stands at {}",
                    file.bytes_received
                ),
            ));
        }
        let _guard = self.lock_upload(id)?;
        if !self.files.begin_upload(id, self.clock.now()).await? {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the file is not waiting for bytes",
            ));
        }
        let key = blob_key(id);
        let mut digests = self.resume_digests(id, offset).await?;
        let at_start = digests.clone();
        let mut writer = self
            .blobs
            .open_partial(&key, offset)
            .await
            .map_err(blob_error)?;
        let mut chunk_hasher = checksum.as_ref().map(ChunkHasher::for_checksum);
        let stop = self
            .ingest(
                &file,
                writer.as_mut(),
                &mut digests,
                body,
                chunk_hasher.as_mut(),
            )
            .await;
        match stop {
            Ok(()) => {}
            Err(IngestStop::TooLarge) => {
                drop(writer);
                return Err(self.too_large(&file, digests.len + 1).await);
            }
            Err(IngestStop::Body(e)) => {
                // Keep what arrived: that is the point of a resumable upload.
                let durable = writer.sync().await.map_err(blob_error)?;
                drop(writer);
                let durable = durable.min(digests.len);
                if durable == digests.len {
                    self.keep_digests(id, digests);
                }
                self.files
                    .pause_upload(id, durable, self.clock.now())
                    .await?;
                return Err(AppError::new(
                    ErrorCode::MalformedRequest,
                    format!("the upload broke off: {e}"),
                ));
            }
            Err(IngestStop::Store(e)) => {
                // The store failed (a full disk, most often): give back the room this PATCH
                // took, so the upload stands at the offset it had, durable and resumable.
                drop(writer);
                match self.blobs.open_partial(&key, offset).await {
                    Ok(mut w) => {
                        if let Err(e) = w.sync().await {
                            tracing::warn!(file.id = %id, error = %e, "could not cut a failed PATCH's bytes");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(file.id = %id, error = %e, "could not cut a failed PATCH's bytes")
                    }
                }
                if let Err(e) = self.files.pause_upload(id, offset, self.clock.now()).await {
                    tracing::warn!(file.id = %id, error = %e, "could not record a failed PATCH's offset");
                }
                return Err(blob_error(e));
            }
        }
        let durable = writer.sync().await.map_err(blob_error)?;
        drop(writer);
        if let (Some(hasher), Some(expected)) = (chunk_hasher, checksum.as_ref()) {
            if !hasher.matches(expected) {
                // Drop this PATCH's bytes; the upload goes on from where it stood.
                let mut w = self
                    .blobs
                    .open_partial(&key, offset)
                    .await
                    .map_err(blob_error)?;
                w.sync().await.map_err(blob_error)?;
                self.keep_digests(id, at_start);
                self.files
                    .pause_upload(id, offset, self.clock.now())
                    .await?;
                return Ok(PatchOutcome::ChecksumMismatch { offset });
            }
        }
        if durable == file.size {
            let done = self.finalize(&file, digests).await?;
            return Ok(PatchOutcome::Accepted {
                offset: durable,
                file: Box::new(done),
            });
        }
        self.keep_digests(id, digests);
        self.announce_progress(&file, durable).await;
        let mut file = file;
        file.bytes_received = durable;
        file.status = FileStatus::Uploading;
        Ok(PatchOutcome::Accepted {
            offset: durable,
            file: Box::new(file),
        })
    }

    fn keep_digests(&self, id: Id, digests: Digests) {
        if let Ok(mut map) = self.uploads.digests.lock() {
            map.insert(id, digests);
        }
    }

    /// The digests of the first `offset` bytes: kept from the previous PATCH, or (after a
    /// restart) computed again from the partial object.
    async fn resume_digests(&self, id: Id, offset: u64) -> AppResult<Digests> {
        if offset == 0 {
            return Ok(Digests::default());
        }
        let kept = self
            .uploads
            .digests
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&id));
        if let Some(d) = kept.filter(|d| d.len == offset) {
            return Ok(d);
        }
        let mut read = self
            .blobs
            .read_partial(&blob_key(id))
            .await
            .map_err(blob_error)?;
        let mut digests = Digests::default();
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(AppError::internal)?;
            let room = (offset - digests.len) as usize;
            digests.update(&chunk[..chunk.len().min(room)]);
            if digests.len >= offset {
                break;
            }
        }
        if digests.len < offset {
            return Err(AppError::internal(anyhow::anyhow!(
                "partial upload shorter than its recorded offset"
            )));
        }
        Ok(digests)
    }

    /// tus termination: the upload and its file are gone.
    pub async fn tus_terminate(&self, who: &Principal, id: Id) -> AppResult<()> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("upload"))?;
        if file.owner_id != who.id() {
            return Err(AppError::not_found("upload"));
        }
        let _guard = self.lock_upload(id)?;
        self.remove_file(id).await
    }

    /// The file whose bytes (or a variant's) the caller or a signed URL may read.
    pub async fn content_file(
        &self,
        id: Id,
        access: ContentAccess<'_>,
        variant: Option<&str>,
    ) -> AppResult<FileRecord> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        let object = match variant {
            Some(v) => format!("{id}/{v}"),
            None => id.to_string(),
        };
        match access {
            ContentAccess::Caller(who) => {
                let own = who.map(Principal::id) == Some(file.owner_id);
                if !own && file.visibility != Visibility::Public {
                    return Err(AppError::not_found("file"));
                }
            }
            ContentAccess::Signed { expires, signature } => {
                let ok = match expires {
                    // Public URLs never expire, but only while the file is public.
                    None => {
                        file.visibility == Visibility::Public
                            && self.signer.verify(
                                SignedParts {
                                    method: "GET",
                                    object: &format!("{object}:public"),
                                    expires: 0,
                                    size: None,
                                    content_type: None,
                                },
                                signature,
                            )
                    }
                    Some(expires) => self.signer.verify(
                        SignedParts {
                            method: "GET",
                            object: &object,
                            expires,
                            size: None,
                            content_type: None,
                        },
                        signature,
                    ),
                };
                if !ok {
                    return Err(AppError::new(
                        ErrorCode::InvalidSignature,
                        "the URL's signature does not match",
                    ));
                }
                if expires.is_some_and(|e| self.clock.now().unix_seconds() > e) {
                    return Err(AppError::new(ErrorCode::UrlExpired, "the URL has expired"));
                }
            }
        }
        if file.status != FileStatus::Ready {
            return Err(AppError::not_found("file content"));
        }
        Ok(file)
    }

    /// Streams a ready file's bytes (or a variant's), all or `range` (start inclusive, end
    /// exclusive).
    pub async fn open_content(
        &self,
        file: &FileRecord,
        variant: Option<&str>,
        range: Option<(u64, u64)>,
    ) -> AppResult<BlobRead> {
        let key = match variant {
            Some(v) => format!("{}/{v}", blob_key(file.id)),
            None => blob_key(file.id),
        };
        self.blobs.get(&key, range).await.map_err(blob_error)
    }

    /// Uploads left `uploading` by a process that died go back to `pending` at their durable
    /// offset (the smaller of the recorded progress and the partial object's length), so a
    /// PUT can be retried and tus resumes. `idle_ms`: how long without progress counts as dead
    /// (live writers record progress every 100 ms). Returns how many were recovered.
    pub async fn recover_stalled_uploads(&self, idle_ms: i64) -> AppResult<usize> {
        let now = self.clock.now();
        let stalled = self
            .files
            .stalled_uploads(now.plus_millis(-idle_ms), 500)
            .await?;
        let mut recovered = 0;
        for id in stalled {
            let busy_here = self
                .uploads
                .busy
                .lock()
                .map(|b| b.contains(&id))
                .unwrap_or(true);
            if busy_here {
                continue;
            }
            let Some(file) = self.files.file_by_id(id).await? else {
                continue;
            };
            let on_disk = self
                .blobs
                .partial_len(&blob_key(id))
                .await
                .map_err(blob_error)?
                .unwrap_or(0);
            let durable = file.bytes_received.min(on_disk);
            self.forget_upload_state(id);
            self.files.pause_upload(id, durable, now).await?;
            tracing::info!(file.id = %id, offset = durable, "interrupted upload recovered");
            recovered += 1;
        }
        Ok(recovered)
    }

    /// One pass of the sweeper: uploads whose window closed fail with `upload_expired` and
    /// lose their bytes; objects whose file row is gone are removed; uploads whose writer died
    /// are recovered. Returns how many expired and how many orphans were removed.
    pub async fn sweep_once(&self) -> AppResult<(usize, usize)> {
        self.recover_stalled_uploads(STALLED_AFTER_MS).await?;
        let now = self.clock.now();
        let expired = self.files.expired_uploads(now, 500).await?;
        for id in &expired {
            if let Some(file) = self.files.file_by_id(*id).await? {
                if self
                    .uploads
                    .busy
                    .lock()
                    .map(|b| b.contains(id))
                    .unwrap_or(true)
                {
                    continue;
                }
                let _ = self
                    .fail_upload(
                        &file,
                        ErrorCode::UploadExpired,
                        "the upload window closed before the upload completed".into(),
                    )
                    .await;
            }
        }
        let stored = self.blobs.list_file_ids().await.map_err(blob_error)?;
        // Leave very recent objects alone: their row may be being written right now.
        let settled: Vec<Id> = stored
            .iter()
            .filter(|(_, modified)| modified.millis() < now.millis() - 10_000)
            .map(|(id, _)| *id)
            .collect();
        let mut orphans = 0;
        for chunk in settled.chunks(500) {
            let existing: HashSet<Id> = self
                .files
                .existing_file_ids(chunk)
                .await?
                .into_iter()
                .collect();
            for id in chunk.iter().filter(|id| !existing.contains(id)) {
                match self.blobs.delete(&blob_key(*id)).await {
                    Ok(()) => orphans += 1,
                    Err(e) => {
                        tracing::warn!(file.id = %id, error = %e, "could not remove an orphaned object")
                    }
                }
            }
        }
        if !expired.is_empty() || orphans > 0 {
            tracing::info!(expired = expired.len(), orphans, "sweeper pass");
        }
        Ok((expired.len(), orphans))
    }
}
