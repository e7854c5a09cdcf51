//! Files: creating them against the tier's limits (with an upload ticket), reading them under
//! the visibility rules, changing and deleting them, and the signed URLs that serve them.

use shutter_core::domain::{parse_hex_digest, ContentType, FileName, FileStatus, Tag, Visibility};
use shutter_core::error::FieldError;
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id, Page, PageRequest};

use crate::accounts::Principal;
use crate::ports::{
    AllowanceRefusal, FileChange, FileDeletion, FileFilter, NewFile, UploadAllowance,
};
use crate::{AppError, AppResult, Shutter};

/// What a client declares about a file before sending its bytes.
#[derive(Clone, Debug, Default)]
pub struct NewFileInput {
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub visibility: Option<Visibility>,
    pub tags: Vec<String>,
}

pub use crate::transfers::{MultipartTicket, UploadTicket};

/// A file with the URLs the viewer may use.
#[derive(Clone, Debug)]
pub struct FileView {
    pub file: FileRecord,
    /// Signed URL of the bytes, once the file is ready.
    pub url: Option<String>,
    /// `(name, url, width, height)` of each variant of a processed image.
    pub variants: Vec<(String, String, u32, u32)>,
}

/// How a download is authorised: as a signed-in (or anonymous) caller, or by a signed URL.
#[derive(Clone, Debug)]
pub enum ContentAccess<'a> {
    Caller(Option<&'a Principal>),
    Signed {
        expires: Option<i64>,
        signature: &'a str,
    },
}

/// The client's error for a refused allowance, naming the limit.
pub(crate) fn allowance_error(refusal: AllowanceRefusal, allowance: UploadAllowance) -> AppError {
    match refusal {
        AllowanceRefusal::TooManyUploads { open } => AppError::new(
            ErrorCode::TooManyUploads,
            format!(
                "at most {} unfinished uploads at once",
                allowance.max_open_uploads
            ),
        )
        .with_limit("max_concurrent_uploads", allowance.max_open_uploads, open),
        AllowanceRefusal::QuotaExceeded { used } => AppError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "the storage quota of {} bytes would be exceeded",
                allowance.storage_quota
            ),
        )
        .with_limit("storage_quota", allowance.storage_quota, used),
    }
}

/// A [`NewFileInput`] whose fields passed their rules.
struct ParsedFile {
    filename: FileName,
    content_type: ContentType,
    sha256: Option<String>,
    md5: Option<String>,
    tags: Vec<Tag>,
}

pub(crate) fn blob_key(id: Id) -> String {
    format!("files/{id}")
}

impl Shutter {
    fn parse_new_file(&self, field_prefix: &str, input: &NewFileInput) -> AppResult<ParsedFile> {
        let f = |name: &str| format!("{field_prefix}{name}");
        let mut errors: Vec<FieldError> = Vec::new();
        let filename = FileName::parse(&f("filename"), &input.filename)
            .map_err(|e| errors.push(e))
            .ok();
        let content_type = ContentType::parse(&f("content_type"), &input.content_type)
            .map_err(|e| errors.push(e))
            .ok();
        let sha256 = input
            .sha256
            .as_deref()
            .map(|s| parse_hex_digest(&f("sha256"), s, 32))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let md5 = input
            .md5
            .as_deref()
            .map(|s| parse_hex_digest(&f("md5"), s, 16))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let tags = Tag::parse_list(&f("tags"), &input.tags)
            .map_err(|e| errors.push(e))
            .ok();
        match (filename, content_type, tags) {
            (Some(filename), Some(content_type), Some(tags)) if errors.is_empty() => {
                Ok(ParsedFile {
                    filename,
                    content_type,
                    sha256,
                    md5,
                    tags,
                })
            }
            _ => Err(AppError::validation(errors)),
        }
    }

    /// Validates declared files against the rules and the tier's size limit, and the allowance
    /// (open uploads, quota) the store must check them against when it creates them.
    pub(crate) fn prepare_files(
        &self,
        who: &Principal,
        inputs: &[NewFileInput],
        field_prefix: impl Fn(usize) -> String,
    ) -> AppResult<(Vec<NewFile>, UploadAllowance)> {
        let limits = self.config.tier_limits(who.user.tier).clone();
        let now = self.clock.now();
        let expires = now.plus_secs(self.config.storage.upload_url_ttl.get().as_secs() as i64);
        let mut new_files = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let ParsedFile {
                filename,
                content_type,
                sha256,
                md5,
                tags,
            } = self.parse_new_file(&field_prefix(i), input)?;
            let max = limits.max_file_size.bytes();
            if input.size > max {
                return Err(AppError::new(
                    ErrorCode::FileTooLarge,
                    format!(
                        "the {} tier allows files up to {max} bytes",
                        who.user.tier.as_str()
                    ),
                )
                .with_limit("max_file_size", max, input.size));
            }
            new_files.push(NewFile {
                id: Id::new(),
                owner_id: who.id(),
                filename: filename.into_string(),
                content_type: content_type.into_string(),
                size: input.size,
                declared_sha256: sha256,
                declared_md5: md5,
                visibility: input.visibility.unwrap_or(Visibility::Private),
                tags: tags.into_iter().map(Tag::into_string).collect(),
                created_at: now,
                upload_expires_at: expires,
            });
        }
        let allowance = UploadAllowance {
            max_open_uploads: u64::from(limits.max_concurrent_uploads),
            storage_quota: limits.storage_quota.bytes(),
        };
        Ok((new_files, allowance))
    }

    /// Creates files for `who` after checking them against the tier: one request's files are
    /// created together or not at all.
    pub(crate) async fn create_files_checked(
        &self,
        who: &Principal,
        inputs: &[NewFileInput],
        field_prefix: impl Fn(usize) -> String,
    ) -> AppResult<Vec<FileRecord>> {
        let (new_files, allowance) = self.prepare_files(who, inputs, field_prefix)?;
        self.files
            .create_files(who.id(), new_files, allowance)
            .await?
            .map_err(|refusal| allowance_error(refusal, allowance))
    }

    pub async fn create_file(
        &self,
        who: &Principal,
        input: NewFileInput,
    ) -> AppResult<(FileView, UploadTicket)> {
        let mut files = self
            .create_files_checked(who, std::slice::from_ref(&input), |_| String::new())
            .await?;
        let file = files
            .pop()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no file created")))?;
        tracing::info!(file.id = %file.id, user.id = %who.id(), size = file.size, "file created");
        let ticket = self.upload_ticket(&file).await?;
        Ok((self.file_view(file), ticket))
    }

    /// Where the file's bytes go (see [`crate::transfers`]).
    pub async fn upload_ticket(&self, file: &FileRecord) -> AppResult<UploadTicket> {
        self.transfers
            .upload_ticket(file, self.clock.now())
            .await
            .map_err(crate::uploads::blob_error)
    }

    /// The file with its download URL when ready: private files get a URL that expires after
    /// `storage.download_url_ttl`; public ones a stable URL (it stops working if the file is
    /// made private or deleted).
    pub fn file_view(&self, file: FileRecord) -> FileView {
        let url = (file.status == FileStatus::Ready).then(|| self.content_url(&file, None));
        FileView {
            file,
            url,
            variants: Vec::new(),
        }
    }

    /// One file's view with its variants' URLs, as every answer that shows a ready file has.
    async fn file_view_with_variants(&self, file: FileRecord) -> AppResult<FileView> {
        let mut views = self.file_views(vec![file]).await?;
        views.pop().ok_or_else(|| AppError::not_found("file"))
    }

    /// Views of files with their variants' URLs (one query for all of them).
    async fn file_views(&self, files: Vec<FileRecord>) -> AppResult<Vec<FileView>> {
        let ready: Vec<Id> = files
            .iter()
            .filter(|f| f.status == FileStatus::Ready)
            .map(|f| f.id)
            .collect();
        let mut variants = if ready.is_empty() {
            Vec::new()
        } else {
            self.media.variants_of(&ready).await?
        };
        Ok(files
            .into_iter()
            .map(|file| {
                let mut view = self.file_view(file);
                view.variants = variants
                    .iter()
                    .filter(|(id, _)| *id == view.file.id)
                    .map(|(_, v)| {
                        (
                            v.name.clone(),
                            self.content_url(&view.file, Some(&v.name)),
                            v.width,
                            v.height,
                        )
                    })
                    .collect();
                variants.retain(|(id, _)| *id != view.file.id);
                view
            })
            .collect())
    }

    /// The URL of a file's bytes or a variant's (see [`Transfers::download_url`]).
    ///
    /// [`Transfers::download_url`]: crate::transfers::Transfers::download_url
    pub fn content_url(&self, file: &FileRecord, variant: Option<&str>) -> String {
        self.transfers.download_url(file, variant, self.clock.now())
    }

    /// Checks a presigned upload URL before the upload starts and returns its file. Its
    /// signature covers the declared size and type, so the file is read first; a file that
    /// does not exist gets the answer of a bad signature (no URL for it can be valid), never
    /// `not_found`.
    pub async fn check_upload_url(
        &self,
        id: Id,
        expires: i64,
        signature: &str,
    ) -> AppResult<FileRecord> {
        let file = self.files.file_by_id(id).await?;
        file.filter(|file| self.transfers.upload_url_is_valid(file, expires, signature))
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidSignature,
                    "the upload URL's signature does not match",
                )
            })
    }

    /// The owner sees a file in any state; anyone else only a public, ready file.
    pub async fn file(&self, id: Id, viewer: Option<&Principal>) -> AppResult<FileView> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        let own = viewer.map(Principal::id) == Some(file.owner_id);
        let public_ready =
            file.visibility == Visibility::Public && file.status == FileStatus::Ready;
        if !own && !public_ready {
            return Err(AppError::not_found("file"));
        }
        let file = self.with_direct_progress(file).await;
        self.file_view_with_variants(file).await
    }

    pub async fn files_of(
        &self,
        who: &Principal,
        filter: FileFilter,
        page: PageRequest,
    ) -> AppResult<Page<FileView>> {
        let page = self.files.files_of_owner(who.id(), filter, page).await?;
        let next_cursor = page.next_cursor;
        let items = self.file_views(page.items).await?;
        Ok(Page { items, next_cursor })
    }

    /// The file if `who` owns it. Others get `forbidden` for a file they can see (public and
    /// ready) and `not_found` otherwise, so private files do not leak.
    async fn owned_file(&self, who: &Principal, id: Id) -> AppResult<FileRecord> {
        let file = self
            .files
            .file_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        if file.owner_id == who.id() {
            return Ok(file);
        }
        if file.visibility == Visibility::Public && file.status == FileStatus::Ready {
            Err(AppError::forbidden("only the owner may change a file"))
        } else {
            Err(AppError::not_found("file"))
        }
    }

    /// `POST /v1/files/{id}/complete`. On a store that takes uploads directly (S3) this is
    /// where an open upload's bytes are checked and committed (see
    /// [`Self::complete_direct_upload`]); on the built-in store the upload completed with its
    /// last byte. Either way a file past its upload is returned as it is (a second call, or
    /// one after a failure, shows the failure); others get [`Self::owned_file`]'s answer.
    pub async fn complete_upload(
        &self,
        who: &Principal,
        id: Id,
        parts: Option<Vec<(u32, String)>>,
    ) -> AppResult<FileView> {
        let file = self.owned_file(who, id).await?;
        // A file past its upload (ready, processing or failed) is returned as it is.
        let file = if file.status.is_open() && self.takes_direct_uploads() {
            self.complete_direct_upload(file, parts).await?
        } else {
            file
        };
        let mut views = self.file_views(vec![file]).await?;
        views.pop().ok_or_else(|| AppError::not_found("file"))
    }

    pub async fn update_file(
        &self,
        who: &Principal,
        id: Id,
        filename: Option<String>,
        visibility: Option<Visibility>,
        tags: Option<Vec<String>>,
    ) -> AppResult<FileView> {
        let mut errors = Vec::new();
        let filename = filename.map(|f| {
            FileName::parse("filename", &f)
                .map_err(|e| errors.push(e))
                .ok()
                .map(FileName::into_string)
        });
        let tags = tags.map(|t| {
            Tag::parse_list("tags", &t)
                .map_err(|e| errors.push(e))
                .ok()
                .map(|t| t.into_iter().map(Tag::into_string).collect::<Vec<_>>())
        });
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        self.owned_file(who, id).await?;
        let change = FileChange {
            filename: filename.flatten(),
            visibility,
            tags: tags.flatten(),
        };
        let file = self
            .files
            .update_file(id, change, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found("file"))?;
        self.uploads.content.invalidate();
        self.file_view_with_variants(file).await
    }

    /// Deletes the row at once (its URLs stop working) and then the bytes; bytes that could
    /// not be deleted now are found and removed by the sweeper.
    pub async fn delete_file(&self, who: &Principal, id: Id) -> AppResult<()> {
        self.owned_file(who, id).await?;
        self.remove_file(id).await?;
        tracing::info!(file.id = %id, user.id = %who.id(), "file deleted");
        Ok(())
    }

    /// Deletes a file no post uses; its bytes are erased by a `delete_objects` job enqueued in
    /// the same transaction.
    pub(crate) async fn remove_file(&self, id: Id) -> AppResult<()> {
        match self
            .media
            .delete_file_unless_used(id, self.clock.now())
            .await?
        {
            FileDeletion::Deleted => {
                self.uploads.content.invalidate();
                self.forget_upload_state(id);
                self.wake_workers();
                Ok(())
            }
            FileDeletion::InUse => Err(AppError::new(
                ErrorCode::Conflict,
                "a post uses this file; delete the post instead",
            )),
            FileDeletion::Missing => Err(AppError::not_found("file")),
        }
    }
}
