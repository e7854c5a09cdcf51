//! Downloads: who (or which signed URL) may read a ready file's bytes, and streaming them.

use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id};

use super::blob_error;
use crate::accounts::Principal;
use crate::files::{blob_key, ContentAccess};
use crate::ports::BlobRead;
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
            self.check_download_url(id, variant, expires, signature)?;
        }
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
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

    /// Where a private file's bytes (or a variant's) may be fetched straight from the object
    /// store, when it serves them itself (S3): a presigned URL valid for a few minutes at
    /// most, carrying the `Content-Type` and `Content-Disposition` Shutter would send. Public
    /// files are served by Shutter at their stable, cacheable URL.
    pub fn presigned_content_url(
        &self,
        file: &FileRecord,
        variant: Option<&str>,
        content_type: &str,
        content_disposition: &str,
    ) -> Option<String> {
        if file.visibility != Visibility::Private {
            return None;
        }
        let ttl = self
            .config
            .storage
            .download_url_ttl
            .get()
            .min(PRESIGNED_GET_TTL);
        self.blobs.presigned_get(
            &content_key(file, variant),
            ttl,
            content_type,
            content_disposition,
        )
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
            .get(&content_key(file, variant), range)
            .await
            .map_err(blob_error)
    }
}

/// A redirect to the store is followed at once; its URL need not outlive that by much.
const PRESIGNED_GET_TTL: std::time::Duration = std::time::Duration::from_secs(300);

fn content_key(file: &FileRecord, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{}/{v}", blob_key(file.id)),
        None => blob_key(file.id),
    }
}
