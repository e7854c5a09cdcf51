//! Downloads: who (or which signed URL) may read a ready file's bytes, and streaming them.

use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id};

use super::blob_error;
use crate::accounts::Principal;
use crate::files::ContentAccess;
use crate::ports::BlobRead;
use crate::transfers::content_key;
use crate::{AppError, AppResult, Shutter};

impl Shutter {
    /// The file whose bytes (or a variant's) the caller or a signed URL may read.
    pub async fn content_file(
        &self,
        id: Id,
        access: ContentAccess<'_>,
        variant: Option<&str>,
    ) -> AppResult<FileRecord> {
        // A signed URL's signature and expiry come first: a bad one gets the same answer
        // whether the file exists or not.
        if let ContentAccess::Signed { expires, signature } = access {
            self.transfers
                .check_download_url(id, variant, expires, signature, self.clock.now())?;
        }
        let file = match self.uploads.content.get(id) {
            Some(file) => file,
            None => {
                let epoch = self.uploads.content.epoch();
                let file = self
                    .files
                    .file_by_id(id)
                    .await?
                    .ok_or_else(|| AppError::not_found("file"))?;
                self.uploads.content.put(&file, epoch);
                file
            }
        };
        match access {
            ContentAccess::Caller(who) => {
                let own = who.map(Principal::id) == Some(file.owner_id);
                if !own && file.visibility != Visibility::Public {
                    return Err(AppError::not_found("file"));
                }
            }
            ContentAccess::Signed { expires, .. } => {
                // Public URLs never expire, but only while the file is public.
                if expires.is_none() && file.visibility != Visibility::Public {
                    return Err(AppError::new(
                        ErrorCode::InvalidSignature,
                        "the URL's signature does not match",
                    ));
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
        self.blobs
            .get(&content_key(file.id, variant), range)
            .await
            .map_err(blob_error)
    }
}
