//! The sweeper: uploads whose writer died are recovered, uploads whose window closed fail,
//! objects without a file row are removed.

use std::collections::HashSet;

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
