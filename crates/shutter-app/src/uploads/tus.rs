//! Resumable uploads (tus): creation, PATCHes at an offset with optional per-request
//! checksums, digests kept between PATCHes, termination.

use futures::StreamExt;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use shutter_core::domain::FileStatus;
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id};

use super::{blob_error, Digests, IngestStop};
use crate::accounts::Principal;
use crate::files::blob_key;
use crate::ports::ByteStream;
use crate::{AppError, AppResult, Shutter};

/// A per-request checksum of one tus PATCH (`Upload-Checksum`).
#[derive(Clone, Debug)]
pub enum ChunkChecksum {
    Sha1(Vec<u8>),
    Md5(Vec<u8>),
    Sha256(Vec<u8>),
}

pub(super) enum ChunkHasher {
    Sha1(Sha1),
    Md5(Md5),
    Sha256(Sha256),
}

impl ChunkHasher {
    pub(super) fn for_checksum(c: &ChunkChecksum) -> Self {
        match c {
            ChunkChecksum::Sha1(_) => ChunkHasher::Sha1(Sha1::new()),
            ChunkChecksum::Md5(_) => ChunkHasher::Md5(Md5::new()),
            ChunkChecksum::Sha256(_) => ChunkHasher::Sha256(Sha256::new()),
        }
    }

    pub(super) fn update(&mut self, chunk: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => h.update(chunk),
            ChunkHasher::Md5(h) => h.update(chunk),
            ChunkHasher::Sha256(h) => h.update(chunk),
        }
    }

    pub(super) fn matches(self, expected: &ChunkChecksum) -> bool {
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

/// What a tus PATCH achieved.
#[derive(Clone, Debug)]
pub enum PatchOutcome {
    /// Bytes appended; the upload goes on from `offset` (or is complete when `file` is
    /// `ready`).
    Accepted { offset: u64, file: Box<FileRecord> },
    /// `Upload-Checksum` did not match: the PATCH's bytes were dropped; `offset` is unchanged.
    ChecksumMismatch { offset: u64 },
}

impl Shutter {
    /// The file a tus request addresses, if `who` owns it (anyone else: `not_found`).
    async fn own_upload(&self, who: &Principal, id: Id) -> AppResult<FileRecord> {
        self.files
            .file_by_id(id)
            .await?
            .filter(|file| file.owner_id == who.id())
            .ok_or_else(|| AppError::not_found("upload"))
    }

    /// The file a tus request addresses, if `who` owns it and its upload window is open.
    pub async fn tus_file(&self, who: &Principal, id: Id) -> AppResult<FileRecord> {
        let file = self.own_upload(who, id).await?;
        if file.status.is_open() && self.clock.now() > file.upload_expires_at {
            return Err(AppError::new(
                ErrorCode::UploadExpired,
                "the upload has expired",
            ));
        }
        Ok(file)
    }

    /// The upload as tus `HEAD` reports it. One left `uploading` by a node that died goes back
    /// to what is durable first (when no node holds its writer lock), so the offset a client
    /// resumes from is one whose bytes are kept.
    pub async fn tus_head(&self, who: &Principal, id: Id) -> AppResult<FileRecord> {
        let file = self.tus_file(who, id).await?;
        if !self.may_be_abandoned(&file) {
            return Ok(file);
        }
        let Ok(guard) = self.lock_upload(id).await else {
            return Ok(file); // a live writer has it
        };
        let file = self.tus_file(who, id).await?;
        let taken = if self.may_be_abandoned(&file) && self.take_over(&file).await? {
            self.tus_file(who, id).await
        } else {
            Ok(file)
        };
        guard.release().await;
        taken
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
        // Ownership first (a stranger learns nothing from the lock), then the state the
        // PATCH depends on, read again under the lock: a PATCH that read the offset before
        // another one at the same offset finished would otherwise write over acknowledged
        // bytes.
        self.tus_file(who, id).await?;
        let guard = self.lock_upload(id).await?;
        let outcome: AppResult<PatchOutcome> = async {
            let mut file = self.tus_file(who, id).await?;
            if self.may_be_abandoned(&file) && self.take_over(&file).await? {
                file = self.tus_file(who, id).await?;
            }
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
            crate::crash::pause(crate::crash::TUS_OFFSET_CHECKED).await;
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
            file.bytes_received = durable;
            file.status = FileStatus::Uploading;
            Ok(PatchOutcome::Accepted {
                offset: durable,
                file: Box::new(file),
            })
        }
        .await;
        // Given back before the answer leaves, so the client's next PATCH may go to any node.
        guard.release().await;
        outcome
    }

    fn keep_digests(&self, id: Id, digests: Digests) {
        if let Ok(mut map) = self.uploads.digests.lock() {
            map.insert(id, digests);
        }
    }

    /// The digests of the first `offset` bytes: kept from the previous PATCH, or (after a
    /// restart) computed again from the partial object.
    pub(super) async fn resume_digests(&self, id: Id, offset: u64) -> AppResult<Digests> {
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
        self.own_upload(who, id).await?;
        let _guard = self.lock_upload(id).await?;
        self.remove_file(id).await
    }
}
