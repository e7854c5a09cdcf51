//! The single-request upload: a `PUT` to a presigned upload URL.

use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id};

use super::{blob_error, Digests, IngestStop};
use crate::files::blob_key;
use crate::ports::ByteStream;
use crate::{AppError, AppResult, Shutter};

impl Shutter {
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
        let file = self.check_upload_url(id, expires, signature).await?;
        let type_ok = content_type.is_none_or(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(&file.content_type)
        });
        if !type_ok {
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
        // A completed file must not fail or be written again.
        let (_guard, file) = self.lock_and_reload(id).await?;
        if !file.status.is_open() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("the file is already {}", file.status.as_str()),
            ));
        }
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
}
