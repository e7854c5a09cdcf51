//! The sweeper: uploads whose writer died are recovered, uploads whose window closed fail,
//! objects without a file row are removed.

use std::collections::HashSet;

use shutter_core::model::Failure;
use shutter_core::{ErrorCode, Id};

use super::blob_error;
use crate::files::blob_key;
use crate::{AppResult, Shutter};

/// An upload without progress for this long has lost its writer (see
/// [`Shutter::recover_stalled_uploads`]).
const STALLED_AFTER_MS: i64 = 60_000;
/// At start-up on a shared database: any upload idle this long was cut off.
pub const STALLED_AT_START_MS: i64 = 5_000;

impl Shutter {
    /// Uploads left `uploading` by a process that died go back to `pending` at their durable
    /// offset (the smaller of the recorded progress and the partial object's length), so a
    /// PUT can be retried and tus resumes; one whose every byte is durable is finished here
    /// instead (checked and committed as its writer would have). `idle_ms`: how long without
    /// progress counts as dead (live writers record progress every 100 ms). Returns how many
    /// were recovered.
    pub async fn recover_stalled_uploads(&self, idle_ms: i64) -> AppResult<usize> {
        let now = self.clock.now();
        let cutoff = now.plus_millis(-idle_ms);
        let stalled = self.files.stalled_uploads(cutoff, 500).await?;
        let mut recovered = 0;
        for id in stalled {
            // A writer of this process (or, with shared locks, of any) holds the lock; one
            // elsewhere without them records progress, which the conditional update sees.
            let Ok(_guard) = self.lock_upload(id).await else {
                continue;
            };
            let Some(file) = self.files.file_by_id(id).await? else {
                continue;
            };
            if self.recover_abandoned(&file, cutoff).await? {
                recovered += 1;
            }
        }
        Ok(recovered)
    }

    /// Recovers an upload whose writer died, under its writer lock: finished when every byte
    /// is durable, else back to `pending` at its durable offset (the smaller of the recorded
    /// progress and the partial object's length), if its row has not changed since `cutoff`.
    /// Whether it was recovered.
    pub(super) async fn recover_abandoned(
        &self,
        file: &shutter_core::model::FileRecord,
        cutoff: shutter_core::Timestamp,
    ) -> AppResult<bool> {
        let id = file.id;
        let partial = self
            .blobs
            .partial_len(&blob_key(id))
            .await
            .map_err(blob_error)?;
        if partial.is_some_and(|len| len >= file.size) && file.bytes_received >= file.size {
            self.finish_recovered(file).await;
            return Ok(true);
        }
        let durable = file.bytes_received.min(partial.unwrap_or(0));
        let now = self.clock.now();
        if self
            .files
            .recover_stalled_upload(id, durable, cutoff, now)
            .await?
        {
            self.forget_upload_state(id);
            tracing::info!(file.id = %id, offset = durable, "interrupted upload recovered");
            return Ok(true);
        }
        Ok(false)
    }

    /// Finishes an upload whose writer died after its last byte was durable.
    async fn finish_recovered(&self, file: &shutter_core::model::FileRecord) {
        let finished = match self.resume_digests(file.id, file.size).await {
            Ok(digests) => self.finalize(file, digests).await,
            Err(e) => Err(e),
        };
        match finished {
            Ok(done) => {
                tracing::info!(file.id = %file.id, status = done.status.as_str(), "interrupted upload finished")
            }
            // A refused upload (checksum, content) is already failed and logged by `finalize`.
            Err(e) if e.code != ErrorCode::Internal && e.code != ErrorCode::ServiceUnavailable => {}
            Err(e) => {
                tracing::warn!(file.id = %file.id, error = %e.detail, "could not finish an interrupted upload")
            }
        }
    }

    /// One pass of the sweeper: uploads whose window closed fail with `upload_expired` and
    /// lose their bytes; objects whose file row is gone are removed; uploads whose writer died
    /// are recovered. Returns how many expired and how many orphans were removed.
    pub async fn sweep_once(&self) -> AppResult<(usize, usize)> {
        self.recover_stalled_uploads(STALLED_AFTER_MS).await?;
        let now = self.clock.now();
        let mut expired = 0;
        for id in self.files.expired_uploads(now, 500).await? {
            // This process's writers are kept out by the lock; the update itself fails only
            // an upload still waiting for bytes, so one that completed since the query (here
            // or in another process) is left alone.
            let Ok(_guard) = self.lock_upload(id).await else {
                continue;
            };
            let failure = Failure {
                code: ErrorCode::UploadExpired,
                detail: "the upload window closed before the upload completed".into(),
            };
            let Some(failed) = self.files.expire_upload(id, failure, now).await? else {
                continue;
            };
            // The object too: a process killed between committing an upload's object and
            // recording it leaves one behind for a file that never completed.
            let key = blob_key(id);
            let removed = match self.blobs.discard_partial(&key).await {
                Ok(()) => self.blobs.delete(&key).await,
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                tracing::warn!(file.id = %id, error = %e, "could not remove an expired upload's bytes");
            }
            self.forget_upload_state(id);
            self.announce_failed(&failed).await;
            expired += 1;
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
        if expired > 0 || orphans > 0 {
            tracing::info!(expired, orphans, "sweeper pass");
        }
        Ok((expired, orphans))
    }
}
