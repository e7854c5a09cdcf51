//! Receiving bytes: a presigned `PUT` or tus `PATCH`es stream into the file's partial object
//! while SHA-256 and MD5 are computed and bytes counted; the last byte triggers the checks
//! (size, checksums, sniffed content, image header) and the atomic commit. Here: the shared
//! ingest, the per-file writer lock and the commit; `put` (the single `PUT`), `tus`
//! (resumable uploads), `checks` (content checks), `downloads` and `sweeper` (abandoned uploads
//! and orphaned objects).

mod checks;
mod content_cache;
mod direct;
mod downloads;
mod put;
mod sweeper;
mod tus;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};
use shutter_core::domain::FileStatus;
use shutter_core::model::{Failure, FileRecord};
use shutter_core::{ErrorCode, Id};

use crate::auth::hex;
use crate::files::blob_key;
use crate::ports::{
    BlobError, ByteStream, Event, EventKind, PartialWriter, UploadResult, WriterLocks,
};
use crate::{AppError, AppResult, Shutter};

pub use sweeper::STALLED_AT_START_MS;
use tus::ChunkHasher;
pub use tus::{ChunkChecksum, PatchOutcome};

use crate::events::PROGRESS_INTERVAL;

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
    /// Ready files as downloads read them (see [`content_cache`]).
    pub(crate) content: content_cache::ContentCache,
}

/// Held while a request writes a file's bytes; a second writer gets `conflict`, on this
/// node and (with [`WriterLocks`]) on any other.
struct UploadGuard<'a> {
    state: &'a UploadState,
    id: Id,
    /// The cross-node lock this guard holds, given back when it drops.
    shared: Option<Arc<dyn WriterLocks>>,
}

impl UploadGuard<'_> {
    /// Gives the cross-node lock back and waits until it is, then this node's.
    async fn release(mut self) {
        if let Some(locks) = self.shared.take() {
            locks.unlock(self.id).await;
        }
    }
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.state.busy.lock() {
            busy.remove(&self.id);
        }
        if let Some(locks) = self.shared.take() {
            // A writer of this node that takes the lock before this runs is fine: a node's
            // locks are counted (each taken once is given back once).
            let id = self.id;
            tokio::spawn(async move { locks.unlock(id).await });
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

fn writer_conflict() -> AppError {
    AppError::new(
        ErrorCode::Conflict,
        "another upload to this file is in progress",
    )
}

pub(crate) fn blob_error(err: BlobError) -> AppError {
    match err {
        BlobError::NotFound => AppError::not_found("stored bytes"),
        BlobError::Unavailable(e) => AppError::unavailable(e),
        BlobError::Other(e) => AppError::internal(e),
    }
}

impl Shutter {
    /// Takes the file's writer lock: this node's, then (with several nodes) the deployment's.
    async fn lock_upload(&self, id: Id) -> AppResult<UploadGuard<'_>> {
        let mut guard = {
            let mut busy = self
                .uploads
                .busy
                .lock()
                .map_err(|_| AppError::internal(anyhow::anyhow!("upload lock poisoned")))?;
            if !busy.insert(id) {
                return Err(writer_conflict());
            }
            UploadGuard {
                state: &self.uploads,
                id,
                shared: None,
            }
        };
        if let Some(locks) = &self.writer_locks {
            // Set before asking: if this request is dropped while the lock is being taken,
            // the guard still gives it back (giving back a lock not held is harmless).
            guard.shared = Some(locks.clone());
            if !locks.try_lock(id).await? {
                guard.shared = None;
                return Err(writer_conflict());
            }
        }
        Ok(guard)
    }

    /// Whether an upload found `uploading` under the writer lock may have been left by a
    /// writer that died: with locks shared by every node, nobody else is writing it now. (A
    /// tus upload also stays `uploading` between PATCHes; [`Shutter::take_over`] tells.)
    fn may_be_abandoned(&self, file: &FileRecord) -> bool {
        self.writer_locks.is_some() && file.status == FileStatus::Uploading
    }

    /// Under the writer lock, makes an `uploading` file whose last writer is gone consistent
    /// again: nothing to do when this node's own last PATCH ended at the recorded offset, or
    /// when the stored bytes reach it; otherwise the upload goes back to what is durable (or
    /// is finished, when every byte is). No clock is compared: the lock says the writer is
    /// gone. Whether the file changed.
    async fn take_over(&self, file: &FileRecord) -> AppResult<bool> {
        let ours = self
            .uploads
            .digests
            .lock()
            .ok()
            .and_then(|d| d.get(&file.id).map(|d| d.len == file.bytes_received))
            .unwrap_or(false);
        if ours && file.bytes_received < file.size {
            return Ok(false);
        }
        let partial = self
            .blobs
            .partial_len(&blob_key(file.id))
            .await
            .map_err(blob_error)?;
        if file.bytes_received < file.size && partial.is_some_and(|len| len >= file.bytes_received)
        {
            return Ok(false);
        }
        self.recover_abandoned(file, shutter_core::Timestamp::from_millis(i64::MAX))
            .await
    }

    /// Takes the file's writer lock and reads the file again under it: another writer may
    /// have completed (or failed) it since it was read without the lock.
    async fn lock_and_reload(&self, id: Id) -> AppResult<(UploadGuard<'_>, FileRecord)> {
        let guard = self.lock_upload(id).await?;
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        Ok((guard, file))
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
            Ok(Some(failed)) => self.announce_failed(&failed).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file.id = %file.id, error = %e, "could not mark an upload failed")
            }
        }
        tracing::info!(file.id = %file.id, code = code.as_str(), "upload failed");
        AppError::new(code, detail)
    }

    /// Tells the owner that an upload failed; a post whose photo it was fails with it.
    async fn announce_failed(&self, failed: &FileRecord) {
        let code = failed
            .failure
            .as_ref()
            .map_or("unknown", |f| f.code.as_str());
        metrics::counter!("uploads_finished_total", "outcome" => code).increment(1);
        self.publish_file_event(failed, EventKind::FileFailed).await;
        if let Err(e) = self.after_media_settled(failed).await {
            tracing::warn!(file.id = %failed.id, error = %e.message, "could not settle the post of a failed upload");
        }
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
        if digests.len == file.size {
            // Every byte is durable (the writer synced): recorded, so that if this process
            // dies before the commit, the upload is finished on recovery instead of a tus
            // client being told it is complete while nothing finishes it.
            self.announce_progress(file, digests.len).await;
        }
        crate::crash::point(crate::crash::UPLOAD_RECEIVED);
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
        crate::crash::point(crate::crash::UPLOAD_COMMITTED);
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
}
