//! How a file's bytes travel, and every URL that says so. The use cases ask [`Transfers`]
//! for an upload ticket, a download URL or a redirect and never build one themselves.
//!
//! The blob store decides: a store that takes uploads and serves downloads itself (S3)
//! answers [`BlobStore::direct_upload`] and [`BlobStore::presigned_get`] with its own
//! presigned URLs; otherwise the bytes go through Shutter, at URLs signed with the server's
//! URL secret (`/v1/files/{id}/content?…&sig=`). tus (`/v1/tus/{id}`) always goes through
//! Shutter.

use std::sync::Arc;
use std::time::Duration;

use shutter_core::domain::Visibility;
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id, Timestamp};

use crate::files::blob_key;
use crate::ports::{BlobResult, BlobStore};
use crate::signing::{SignedParts, UrlSigner};
use crate::{AppError, AppResult};

/// Where and how to send a file's bytes.
#[derive(Clone, Debug)]
pub struct UploadTicket {
    pub file_id: Id,
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send with the bytes.
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
    /// Resumable alternative (tus 1.0.0, with `Authorization: Bearer`).
    pub tus_url: String,
    /// On S3 from `storage.multipart_threshold` on: the parts to `PUT`, then `complete_url`.
    pub multipart: Option<MultipartTicket>,
}

/// A multipart upload straight to the bucket: each part `PUT` to its URL, then a `POST` of
/// the parts' ETags to `complete_url`.
#[derive(Clone, Debug)]
pub struct MultipartTicket {
    pub part_size: u64,
    pub parts: Vec<(u32, String)>,
    pub complete_url: String,
}

/// A redirect to the store is followed at once; its URL need not outlive that by much.
const PRESIGNED_GET_TTL: Duration = Duration::from_secs(300);

/// Issues and checks the URLs that move a file's bytes (see the module's docs).
pub struct Transfers {
    blobs: Arc<dyn BlobStore>,
    signer: UrlSigner,
    /// `server.public_url`, without a trailing slash.
    base: String,
    download_ttl: Duration,
    multipart_threshold: u64,
}

impl Transfers {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        url_secret: Vec<u8>,
        public_url: &str,
        download_ttl: Duration,
        multipart_threshold: u64,
    ) -> Self {
        Transfers {
            blobs,
            signer: UrlSigner::new(url_secret),
            base: public_url.trim_end_matches('/').to_owned(),
            download_ttl,
            multipart_threshold,
        }
    }

    /// Where the file's bytes go until `file.upload_expires_at`: straight to the object
    /// store when it takes uploads itself (a presigned `PUT`, or a multipart upload from
    /// `storage.multipart_threshold` on, then `complete`), else a signed `PUT` to Shutter.
    pub async fn upload_ticket(
        &self,
        file: &FileRecord,
        now: Timestamp,
    ) -> BlobResult<UploadTicket> {
        let ttl_secs = (file.upload_expires_at.millis() - now.millis()).max(0) / 1000;
        let direct = self
            .blobs
            .direct_upload(
                &blob_key(file.id),
                file.size,
                &file.content_type,
                Duration::from_secs(ttl_secs.max(1) as u64),
                self.multipart_threshold,
            )
            .await?;
        let (url, headers, multipart) = match direct {
            Some(direct) => (
                direct.url,
                direct.headers,
                direct.multipart.map(|m| MultipartTicket {
                    part_size: m.part_size,
                    parts: m.parts,
                    complete_url: format!("{}/v1/files/{}/complete", self.base, file.id),
                }),
            ),
            None => {
                let expires = file.upload_expires_at.unix_seconds();
                let sig = self
                    .signer
                    .sign(upload_parts(&file.id.to_string(), file, expires));
                (
                    format!(
                        "{}/v1/files/{}/content?expires={expires}&sig={sig}",
                        self.base, file.id
                    ),
                    vec![("Content-Type".to_owned(), file.content_type.clone())],
                    None,
                )
            }
        };
        Ok(UploadTicket {
            file_id: file.id,
            method: "PUT",
            url,
            headers,
            expires_at: file.upload_expires_at,
            tus_url: self.tus_url(file.id),
            multipart,
        })
    }

    /// The tus upload URL of a file.
    pub fn tus_url(&self, id: Id) -> String {
        format!("{}/v1/tus/{id}", self.base)
    }

    /// Whether a signed upload URL was issued for this file (its signature covers the
    /// declared size and type).
    pub fn upload_url_is_valid(&self, file: &FileRecord, expires: i64, signature: &str) -> bool {
        self.signer
            .verify(upload_parts(&file.id.to_string(), file, expires), signature)
    }

    /// The URL a file view shows for the bytes (or a variant's): private files' expire after
    /// `storage.download_url_ttl`; public ones' are stable (they stop working when the file
    /// is made private or deleted).
    pub fn download_url(&self, file: &FileRecord, variant: Option<&str>, now: Timestamp) -> String {
        let variant_q = variant.map(|v| format!("variant={v}&")).unwrap_or_default();
        let expires = match file.visibility {
            Visibility::Public => None,
            Visibility::Private => Some(now.unix_seconds() + self.download_ttl.as_secs() as i64),
        };
        let (object, signed_expires) = download_object(file.id, variant, expires);
        let sig = self.signer.sign(get_parts(&object, signed_expires));
        let expires_q = expires.map(|e| format!("expires={e}&")).unwrap_or_default();
        format!(
            "{}/v1/files/{}/content?{variant_q}{expires_q}sig={sig}",
            self.base, file.id
        )
    }

    /// Checks a download URL's signature, then its expiry, before anything is looked up, so
    /// a bad or expired URL gets the same answer whether its file exists or not.
    pub fn check_download_url(
        &self,
        id: Id,
        variant: Option<&str>,
        expires: Option<i64>,
        signature: &str,
        now: Timestamp,
    ) -> AppResult<()> {
        let (object, signed_expires) = download_object(id, variant, expires);
        if !self
            .signer
            .verify(get_parts(&object, signed_expires), signature)
        {
            return Err(AppError::new(
                ErrorCode::InvalidSignature,
                "the URL's signature does not match",
            ));
        }
        if expires.is_some_and(|e| now.unix_seconds() > e) {
            return Err(AppError::new(ErrorCode::UrlExpired, "the URL has expired"));
        }
        Ok(())
    }

    /// Where a private file's bytes (or a variant's) may be fetched straight from the object
    /// store, when it serves them itself (S3): a presigned URL valid for a few minutes at
    /// most, carrying the `Content-Type` and `Content-Disposition` Shutter would send. Public
    /// files are served by Shutter at their stable, cacheable URL.
    pub fn download_redirect(
        &self,
        file: &FileRecord,
        variant: Option<&str>,
        content_type: &str,
        content_disposition: &str,
    ) -> Option<String> {
        if file.visibility != Visibility::Private {
            return None;
        }
        self.blobs.presigned_get(
            &content_key(file.id, variant),
            self.download_ttl.min(PRESIGNED_GET_TTL),
            content_type,
            content_disposition,
        )
    }
}

/// The blob key of a file's bytes or of one of its variants.
pub(crate) fn content_key(id: Id, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{}/{v}", blob_key(id)),
        None => blob_key(id),
    }
}

fn upload_parts<'a>(object: &'a str, file: &'a FileRecord, expires: i64) -> SignedParts<'a> {
    SignedParts {
        method: "PUT",
        object,
        expires,
        size: Some(file.size),
        content_type: Some(&file.content_type),
    }
}

fn get_parts(object: &str, expires: i64) -> SignedParts<'_> {
    SignedParts {
        method: "GET",
        object,
        expires,
        size: None,
        content_type: None,
    }
}

/// What a download URL's signature covers: the object (`<id>` or `<id>/<variant>`) and the
/// expiry; a public file's stable URL marks the object `:public` and has no expiry (0).
fn download_object(id: Id, variant: Option<&str>, expires: Option<i64>) -> (String, i64) {
    let object = match variant {
        Some(v) => format!("{id}/{v}"),
        None => id.to_string(),
    };
    match expires {
        None => (format!("{object}:public"), 0),
        Some(e) => (object, e),
    }
}
