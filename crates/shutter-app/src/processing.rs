//! `process_file`: an uploaded image becomes variants (`thumb`, `w640`, `w1080`), a blurhash
//! and its displayed size; a post whose photos are all ready is published. The CPU work runs
//! on the blocking pool, at most one image per core at a time.

use futures::StreamExt;
use shutter_core::domain::FileStatus;
use shutter_core::model::{Failure, FileRecord};
use shutter_core::{ErrorCode, Id};

use crate::files::blob_key;
use crate::jobs::JobError;
use crate::ports::{Event, EventKind, PublishOutcome, VariantInfo};
use crate::Shutter;

/// Room for an image's metadata (EXIF with a thumbnail, ICC profile, XMP) and headers.
const METADATA_ALLOWANCE: u64 = 16 * 1024 * 1024;

/// The most bytes an image of `file`'s dimensions can need to decode: every pixel stored
/// uncompressed at 16 bits per channel with alpha (8 bytes), plus the metadata allowance.
/// A compressed image is smaller; decoders never need bytes past that.
fn decode_budget(file: &FileRecord, max_pixels: u64) -> u64 {
    let pixels = match (file.width, file.height) {
        (Some(w), Some(h)) => u64::from(w) * u64::from(h),
        _ => max_pixels,
    };
    pixels.saturating_mul(8).saturating_add(METADATA_ALLOWANCE)
}

fn job_err(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError {
        message: format!("{what}: {e}"),
    }
}

/// The error code a media failure is reported with.
fn media_code(e: &shutter_media::MediaError) -> ErrorCode {
    match e.code() {
        "image_too_large" => ErrorCode::ImageTooLarge,
        "unsupported_media_type" => ErrorCode::UnsupportedMediaType,
        _ => ErrorCode::ContentMismatch,
    }
}

impl Shutter {
    pub(crate) async fn process_file(&self, id: Id) -> Result<(), JobError> {
        let Some(file) = self
            .files
            .file_by_id(id)
            .await
            .map_err(|e| job_err("reading the file", e))?
        else {
            return Ok(()); // deleted meanwhile: nothing to do
        };
        match file.status {
            FileStatus::Processing => {}
            // Settled by an earlier attempt, which may have died before it looked at the
            // post: settling it again is idempotent (a published post stays as it is).
            FileStatus::Ready | FileStatus::Failed => return self.after_media_settled(&file).await,
            _ => return Ok(()),
        }
        // The permit covers the read too: at most one image per core is in memory at once.
        let permit = self
            .cpu
            .acquire()
            .await
            .map_err(|e| job_err("cpu pool", e))?;
        let bytes = self
            .read_object(&file, decode_budget(&file, self.config.media.max_pixels))
            .await?;
        let limits = shutter_media::Limits {
            max_pixels: self.config.media.max_pixels,
        };
        let content_type = file.content_type.clone();
        let span = tracing::Span::current();
        let processed = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            shutter_media::process(&bytes, &content_type, &limits)
        })
        .await
        .map_err(|e| job_err("image worker", e))?;
        drop(permit);
        let processed = match processed {
            Ok(p) => p,
            Err(e) => {
                self.fail_processing(&file, media_code(&e), e.to_string())
                    .await?;
                return Ok(());
            }
        };
        let key = blob_key(id);
        let mut variants = Vec::with_capacity(processed.variants.len());
        for v in processed.variants {
            let size = v.jpeg.len() as u64;
            self.blobs
                .put(&format!("{key}/{}", v.name), bytes::Bytes::from(v.jpeg))
                .await
                .map_err(|e| job_err("storing a variant", e))?;
            variants.push(VariantInfo {
                name: v.name.to_owned(),
                width: v.width,
                height: v.height,
                size,
            });
        }
        crate::crash::point(crate::crash::JOB_VARIANTS_STORED);
        let done = self
            .media
            .finish_processing(
                id,
                processed.width,
                processed.height,
                processed.blurhash,
                variants,
                self.clock.now(),
            )
            .await
            .map_err(|e| job_err("marking the file ready", e))?;
        crate::crash::point(crate::crash::JOB_FILE_READY);
        if let Some(done) = done {
            tracing::info!(file.id = %id, "file processed");
            self.publish_file_event(&done, EventKind::FileReady).await;
            self.after_media_settled(&done).await?;
        }
        Ok(())
    }

    /// The stored original, up to `budget` bytes: an image's data cannot be longer, so a
    /// longer file is cut there (what follows, padding or a motion photo's video, is never
    /// needed to decode it, and a cut image's data fails to decode).
    async fn read_object(&self, file: &FileRecord, budget: u64) -> Result<Vec<u8>, JobError> {
        let range = (file.size > budget).then_some((0, budget));
        let mut read = self
            .blobs
            .get(&blob_key(file.id), range)
            .await
            .map_err(|e| job_err("reading the stored bytes", e))?;
        let mut bytes = Vec::with_capacity(read.total_len.min(budget) as usize);
        while let Some(chunk) = read.stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| job_err("reading the stored bytes", e))?);
        }
        Ok(bytes)
    }

    /// The file fails with `code`, its bytes go, and its post (if any) fails.
    async fn fail_processing(
        &self,
        file: &FileRecord,
        code: ErrorCode,
        detail: String,
    ) -> Result<(), JobError> {
        let failure = Failure { code, detail };
        let failed = self
            .files
            .fail_file(file.id, failure, self.clock.now())
            .await
            .map_err(|e| job_err("marking the file failed", e))?;
        self.blobs
            .delete(&blob_key(file.id))
            .await
            .map_err(|e| job_err("deleting a failed file's bytes", e))?;
        if let Some(failed) = failed {
            tracing::info!(file.id = %file.id, code = code.as_str(), "file failed processing");
            self.publish_file_event(&failed, EventKind::FileFailed)
                .await;
            self.after_media_settled(&failed).await?;
        }
        Ok(())
    }

    pub(crate) async fn publish_file_event(&self, file: &FileRecord, kind: EventKind) {
        self.events
            .publish(Event {
                user_id: file.owner_id,
                kind,
                file_id: Some(file.id),
                post_id: None,
                bytes_received: Some(file.bytes_received),
                size: Some(file.size),
                failure: file.failure.clone(),
                at: self.clock.now(),
            })
            .await;
    }

    async fn publish_post_event(&self, user_id: Id, post_id: Id, kind: EventKind) {
        self.events
            .publish(Event {
                user_id,
                kind,
                file_id: None,
                post_id: Some(post_id),
                bytes_received: None,
                size: None,
                failure: None,
                at: self.clock.now(),
            })
            .await;
    }

    /// A post's photo became ready or failed: publish the post when all are ready, fail it
    /// when one failed.
    pub(crate) async fn after_media_settled(&self, file: &FileRecord) -> Result<(), JobError> {
        let Some(post_id) = self
            .media
            .post_of_file(file.id)
            .await
            .map_err(|e| job_err("finding the post", e))?
        else {
            return Ok(());
        };
        self.settle_post(post_id, file.owner_id, file.status == FileStatus::Failed)
            .await
    }

    pub(crate) async fn settle_post(
        &self,
        post_id: Id,
        author: Id,
        failed: bool,
    ) -> Result<(), JobError> {
        let now = self.clock.now();
        if failed {
            if self
                .media
                .fail_post(post_id, now)
                .await
                .map_err(|e| job_err("failing the post", e))?
            {
                tracing::info!(post.id = %post_id, "post failed");
                self.publish_post_event(author, post_id, EventKind::PostFailed)
                    .await;
            }
            return Ok(());
        }
        match self
            .media
            .publish_post_if_ready(post_id, now)
            .await
            .map_err(|e| job_err("publishing the post", e))?
        {
            PublishOutcome::Published(post) => {
                tracing::info!(post.id = %post.id, "post published");
                self.publish_post_event(author, post_id, EventKind::PostPublished)
                    .await;
                self.after_publish(post_id).await;
            }
            PublishOutcome::StillPending | PublishOutcome::NotPending => {}
        }
        Ok(())
    }
}
