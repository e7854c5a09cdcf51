//! Uploads that went straight to the object store (S3: a presigned `PUT` or multipart
//! upload): `complete` takes the bytes into the upload's partial object, hashes them as they
//! stream back, and runs the same checks and commit as bytes that came through Shutter.

use futures::StreamExt;
use md5::Md5;
use shutter_core::model::FileRecord;
use shutter_core::ErrorCode;

use super::{blob_error, Digests, Md5Pipeline};
use crate::files::blob_key;
use crate::ports::BlobError;
use crate::{AppError, AppResult, Shutter};

impl Shutter {
    /// Whether tickets send the bytes to the object store rather than to Shutter.
    pub(crate) fn takes_direct_uploads(&self) -> bool {
        self.blobs.takes_direct_uploads()
    }

    /// An open file uploaded straight to the store shows the bytes the store has so far (the
    /// parts of a multipart upload, as the store lists them); asked only when the owner
    /// reads the file, and left as recorded if the store cannot tell.
    pub(crate) async fn with_direct_progress(&self, mut file: FileRecord) -> FileRecord {
        if !file.status.is_open() || !self.takes_direct_uploads() {
            return file;
        }
        match self.blobs.direct_upload_progress(&blob_key(file.id)).await {
            Ok(Some(received)) => {
                file.bytes_received = file.bytes_received.max(received.min(file.size));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file.id = %file.id, error = %e, "could not ask the store for an upload's progress")
            }
        }
        file
    }

    /// Checks and commits a direct upload: the multipart upload completed (with `parts`, or
    /// the parts the store lists), the bytes moved out of the ticket's reach, then size,
    /// checksums, sniffed content and image header exactly as for any upload. A file that
    /// fails a check is `failed` with its code and its bytes are gone.
    pub(crate) async fn complete_direct_upload(
        &self,
        file: FileRecord,
        parts: Option<Vec<(u32, String)>>,
    ) -> AppResult<FileRecord> {
        let id = file.id;
        if self.clock.now() > file.upload_expires_at {
            return Err(AppError::new(
                ErrorCode::UploadExpired,
                "the upload window has closed",
            ));
        }
        let (_guard, file) = self.lock_and_reload(id).await?;
        if !file.status.is_open() {
            return Ok(file);
        }
        let key = blob_key(id);
        match self.blobs.take_direct_upload(&key, parts).await {
            Ok(()) => {}
            Err(BlobError::NotFound) => {
                // Taken by an earlier `complete` that stopped before its checks ended.
                let taken = self.blobs.partial_len(&key).await.map_err(blob_error)?;
                if taken != Some(file.size) {
                    return Err(AppError::new(
                        ErrorCode::Conflict,
                        "the file's bytes have not all arrived: upload them with the ticket first",
                    ));
                }
            }
            Err(e) => return Err(blob_error(e)),
        }
        if !self.files.begin_upload(id, self.clock.now()).await? {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "the file is not waiting for bytes",
            ));
        }
        let mut read = self.blobs.read_partial(&key).await.map_err(blob_error)?;
        if read.total_len > file.size {
            let received = read.total_len;
            drop(read);
            return Err(self.too_large(&file, received).await);
        }
        let mut digests = Digests::default();
        let mut md5 = Md5Pipeline::new(Md5::default());
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(|e| AppError::unavailable(anyhow::Error::new(e)))?;
            digests.update_all_but_md5(&chunk);
            md5.push(chunk).await;
        }
        digests.md5 = md5.finish().await;
        drop(read);
        self.finalize(&file, digests).await
    }
}
