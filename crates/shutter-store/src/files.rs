//! The [`FileRepo`] port on SQLite and PostgreSQL, written once (`file_repo_adapter!`) like
//! the `Repo` adapters in [`crate::repo`], whose per-dialect blocks (placeholder spelling,
//! write transactions, the owner's row lock) it uses.
//!
//! Reads are one statement each (a file with its tags in one snapshot); writes are one
//! transaction each. Usage is not kept in counters: `create_files` sums the owner's rows
//! while holding the owner's write lock (SQLite: the immediate transaction; PostgreSQL: the
//! owner's `users` row `FOR UPDATE`), so two racing creations cannot both fit under a limit.
//! A file a post uses is not deleted (`Conflict("file_in_use")`): the file's row is locked
//! before the check, so no post can take it in between (see `delete_file_in`).

use async_trait::async_trait;
use shutter_app::ports::{
    AllowanceRefusal, FileChange, FileDeletion, FileFilter, FileRepo, NewFile, RepoError,
    RepoResult, UploadAllowance, UploadResult, Usage,
};
use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::model::{Failure, FileRecord};
use shutter_core::{ErrorCode, Id, Page, PageRequest, Timestamp};
use sqlx::{Postgres, Row, Sqlite};

use crate::dialect::placeholder_list;
use crate::error::repo_error;
use crate::queries as q;
use crate::repo::bind_ids;
use crate::repo::{corrupt, page_binds, parse_id, PgRepo, SqliteRepo};
use crate::rows::{self, id_binds, Bind, Columns};
use crate::write::WriteTx;

/// Ids per `IN (…)` list: far below both dialects' limits on bound parameters.
pub(crate) const IDS_PER_STATEMENT: usize = 500;

/// The conditions a filter adds after `WHERE f.owner_id = ?`, and their values in order.
fn filter_clauses(filter: FileFilter) -> (String, Vec<Bind>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(visibility) = filter.visibility {
        sql.push_str(q::FILES_WITH_VISIBILITY);
        args.push(Bind::Text(visibility.as_str().to_owned()));
    }
    if let Some(status) = filter.status {
        sql.push_str(q::FILES_WITH_STATUS);
        args.push(Bind::Text(status.as_str().to_owned()));
    }
    if let Some(tag) = filter.tag {
        sql.push_str(q::FILES_WITH_TAG);
        args.push(Bind::Text(tag));
    }
    if let Some(content_type) = filter.content_type {
        match content_type_prefix(&content_type) {
            Some(prefix) => {
                sql.push_str(q::FILES_WITH_CONTENT_TYPE_PREFIX);
                args.push(Bind::Text(prefix.to_owned()));
                args.push(Bind::Text(prefix.to_owned()));
            }
            None => {
                sql.push_str(q::FILES_WITH_CONTENT_TYPE);
                args.push(Bind::Text(content_type));
            }
        }
    }
    if let Some(after) = filter.created_after {
        sql.push_str(q::FILES_CREATED_AFTER);
        args.push(Bind::Int(after.millis()));
    }
    if let Some(before) = filter.created_before {
        sql.push_str(q::FILES_CREATED_BEFORE);
        args.push(Bind::Int(before.millis()));
    }
    (sql, args)
}

/// The prefix of a content-type filter in prefix form: `image/*` is every type starting with
/// `image/`, `*/*` every type. `None` for an exact type.
fn content_type_prefix(content_type: &str) -> Option<&str> {
    if content_type == "*/*" {
        return Some("");
    }
    content_type
        .strip_suffix('*')
        .filter(|prefix| prefix.ends_with('/'))
}

/// Tags in the order given, each once (the first time it appears).
fn distinct_tags(tags: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !out.contains(&tag.as_str()) {
            out.push(tag);
        }
    }
    out
}

/// The row [`q::INSERT_FILE`] and its tags store for `file`, as a read would return it
/// (the transaction that inserted it need not read it back).
fn created_record(owner_id: Id, file: &NewFile) -> FileRecord {
    FileRecord {
        id: file.id,
        owner_id,
        filename: file.filename.clone(),
        content_type: file.content_type.clone(),
        size: file.size,
        declared_sha256: file.declared_sha256.clone(),
        declared_md5: file.declared_md5.clone(),
        sha256: None,
        md5: None,
        visibility: file.visibility,
        tags: distinct_tags(&file.tags)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        status: FileStatus::Pending,
        bytes_received: 0,
        failure: None,
        width: None,
        height: None,
        blurhash: None,
        upload_expires_at: file.upload_expires_at,
        created_at: file.created_at,
        updated_at: file.created_at,
    }
}

/// The owner's usage with `files` added, or why they do not fit. Open uploads are checked
/// first; both totals include the new files (which all start `pending`).
fn check_allowance(
    usage: Usage,
    files: &[NewFile],
    allowance: UploadAllowance,
) -> Result<(), AllowanceRefusal> {
    let open = usage.uploads_open.saturating_add(files.len() as u64);
    if open > allowance.max_open_uploads {
        return Err(AllowanceRefusal::TooManyUploads { open });
    }
    let used = files.iter().fold(usage.bytes_stored, |used, file| {
        used.saturating_add(file.size)
    });
    if used > allowance.storage_quota {
        return Err(AllowanceRefusal::QuotaExceeded { used });
    }
    Ok(())
}

/// New files are created for one owner at a time; a file of anyone else is the caller's bug.
pub(crate) fn check_owner(owner_id: Id, files: &[NewFile]) -> RepoResult<()> {
    match files.iter().find(|f| f.owner_id != owner_id) {
        Some(stray) => Err(RepoError::Other(anyhow::anyhow!(
            "file {} belongs to {}, not to {owner_id}",
            stray.id,
            stray.owner_id
        ))),
        None => Ok(()),
    }
}

/// A size or byte count as stored (BIGINT).
/// One file with its tags, by id (see `rows::fold_tags`).
fn file_by_id_sql() -> String {
    [
        q::FILE_ROWS_HEAD,
        q::WHERE_FILE_ID_IN,
        &placeholder_list(1),
        q::FILE_ROWS_TAIL,
    ]
    .concat()
}

/// The owner's open uploads and stored bytes (`FILE_USAGE`).
fn usage(row: &dyn Columns) -> RepoResult<Usage> {
    Ok(Usage {
        uploads_open: from_db("open uploads", row.int("uploads_open")?)?,
        bytes_stored: from_db("stored bytes", row.int("bytes_stored")?)?,
    })
}

pub(crate) fn to_db(what: &str, n: u64) -> RepoResult<i64> {
    i64::try_from(n)
        .map_err(|_| RepoError::Other(anyhow::anyhow!("{what} {n} is too large to store")))
}

pub(crate) fn from_db(what: &str, n: i64) -> RepoResult<u64> {
    u64::try_from(n).map_err(|_| corrupt(what, &n.to_string()))
}

pub(crate) fn dimension_from_db(what: &str, n: Option<i64>) -> RepoResult<Option<u32>> {
    n.map(|n| u32::try_from(n).map_err(|_| corrupt(what, &n.to_string())))
        .transpose()
}

/// A failure code is stored as its text (`ErrorCode::as_str`).
pub(crate) fn parse_error_code(text: &str) -> RepoResult<ErrorCode> {
    ErrorCode::ALL
        .iter()
        .copied()
        .find(|code| code.as_str() == text)
        .ok_or_else(|| corrupt("failure code", text))
}

macro_rules! file_repo_adapter {
    ($repo:ident, $db:ty) => {
        impl $repo {
            /// Up to `limit` ids from a query taking an instant and a limit.
            async fn file_ids_before(
                &self,
                sql: &str,
                instant: Timestamp,
                limit: u32,
            ) -> RepoResult<Vec<Id>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(&Self::sql(sql))
                    .bind(instant.millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(repo_error)?;
                rows.iter()
                    .map(|row| parse_id(&row.try_get::<String, _>("id").map_err(repo_error)?))
                    .collect()
            }

            /// The file, read inside a write transaction.
            pub(crate) async fn file_in(
                conn: &mut impl WriteTx,
                id: Id,
            ) -> RepoResult<Option<FileRecord>> {
                let found = conn
                    .fetch(&file_by_id_sql(), id_binds(&[id]), rows::file)
                    .await?;
                Ok(rows::fold_tags(found).pop())
            }

            /// Stores `tags` (duplicates dropped) in their order.
            async fn insert_tags(
                conn: &mut impl WriteTx,
                file_id: Id,
                tags: &[String],
            ) -> RepoResult<()> {
                for (position, tag) in (0i64..).zip(distinct_tags(tags)) {
                    let binds = vec![
                        Bind::Text(file_id.to_string()),
                        Bind::Text(tag.to_owned()),
                        Bind::Int(position),
                    ];
                    conn.execute(q::INSERT_FILE_TAG, binds).await?;
                }
                Ok(())
            }

            /// Runs one `UPDATE files … WHERE id = ?` guarded by the file's state and says
            /// whether it matched.
            async fn transition(&self, update: &str, binds: Vec<Bind>) -> RepoResult<bool> {
                Ok(self.write_once(update, binds).await? > 0)
            }

            /// Runs one `UPDATE files … WHERE id = ?` and reads the file back, in one
            /// transaction; `None` when the update matched no row.
            async fn update_and_read(
                &self,
                id: Id,
                update: &str,
                binds: Vec<Bind>,
            ) -> RepoResult<Option<FileRecord>> {
                let mut tx = self.begin_hot().await?;
                if tx.execute(update, binds).await? == 0 {
                    return Ok(None);
                }
                let file = Self::file_in(&mut tx, id).await?;
                Self::commit_hot(tx).await?;
                Ok(file)
            }

            /// Whether `files` fit the owner's allowance. The caller holds the owner's lock
            /// (`lock_user_in`), so the usage read stays true until it commits.
            pub(crate) async fn allowance_in(
                conn: &mut impl WriteTx,
                owner_id: Id,
                files: &[NewFile],
                allowance: UploadAllowance,
            ) -> RepoResult<Result<(), AllowanceRefusal>> {
                let binds = vec![Bind::Text(owner_id.to_string())];
                let usage = conn.fetch(q::FILE_USAGE, binds, usage).await?;
                let usage = usage.into_iter().next().unwrap_or_default();
                Ok(check_allowance(usage, files, allowance))
            }

            /// Inserts `files` (all the owner's, see [`check_owner`], `pending`) with their
            /// tags and reads them back in the order given.
            pub(crate) async fn insert_files_in(
                conn: &mut impl WriteTx,
                owner_id: Id,
                files: &[NewFile],
            ) -> RepoResult<Vec<FileRecord>> {
                for file in files {
                    let binds = vec![
                        Bind::Text(file.id.to_string()),
                        Bind::Text(owner_id.to_string()),
                        Bind::Text(file.filename.clone()),
                        Bind::Text(file.content_type.clone()),
                        Bind::Int(to_db("size", file.size)?),
                        Bind::OptText(file.declared_sha256.clone()),
                        Bind::OptText(file.declared_md5.clone()),
                        Bind::Text(file.visibility.as_str().to_owned()),
                        Bind::Int(file.upload_expires_at.millis()),
                        Bind::Int(file.created_at.millis()),
                        Bind::Int(file.created_at.millis()),
                    ];
                    conn.execute(q::INSERT_FILE, binds).await?;
                    Self::insert_tags(conn, file.id, &file.tags).await?;
                }
                Ok(files.iter().map(|f| created_record(owner_id, f)).collect())
            }

            /// Deletes the file's row (tags and variants cascade) unless a post uses it. The
            /// row is locked first, so no post can take the file between the check and the
            /// delete (and a post that took it just before is seen).
            pub(crate) async fn delete_file_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: Id,
            ) -> RepoResult<FileDeletion> {
                let lock = [q::LOCK_FILE, Self::FOR_UPDATE].concat();
                let found = sqlx::query(&Self::sql(&lock))
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                if found.is_none() {
                    return Ok(FileDeletion::Missing);
                }
                let used = sqlx::query(&Self::sql(q::FILE_IN_USE))
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                if used.is_some() {
                    return Ok(FileDeletion::InUse);
                }
                sqlx::query(&Self::sql(q::DELETE_FILE))
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                Ok(FileDeletion::Deleted)
            }
        }

        #[async_trait]
        impl FileRepo for $repo {
            async fn create_files(
                &self,
                owner_id: Id,
                files: Vec<NewFile>,
                allowance: UploadAllowance,
            ) -> RepoResult<Result<Vec<FileRecord>, AllowanceRefusal>> {
                if files.is_empty() {
                    return Ok(Ok(Vec::new()));
                }
                check_owner(owner_id, &files)?;
                let mut tx = self.begin_hot().await?;
                // From here until commit, no other creation for this owner gets past this
                // point, so the usage read below stays true.
                if !Self::lock_user_in(&mut tx, owner_id).await? {
                    return Err(RepoError::Conflict("missing_reference".to_owned()));
                }
                if let Err(refusal) =
                    Self::allowance_in(&mut tx, owner_id, &files, allowance).await?
                {
                    // Dropped: rolled back.
                    return Ok(Err(refusal));
                }
                let created = Self::insert_files_in(&mut tx, owner_id, &files).await?;
                Self::commit_hot(tx).await?;
                Ok(Ok(created))
            }

            async fn file_by_id(&self, id: Id) -> RepoResult<Option<FileRecord>> {
                let found = self
                    .read(&self.pool, &file_by_id_sql(), id_binds(&[id]), rows::file)
                    .await?;
                Ok(rows::fold_tags(found).pop())
            }

            async fn files_of_owner(
                &self,
                owner_id: Id,
                filter: FileFilter,
                page: PageRequest,
            ) -> RepoResult<Page<FileRecord>> {
                let (filters, args) = filter_clauses(filter);
                let mut sql = [q::FILE_ROWS_HEAD, q::WHERE_FILES_OF_OWNER, &filters].concat();
                if page.after.is_some() {
                    sql.push_str(q::FILES_BEFORE_CURSOR);
                }
                sql.push_str(q::FILES_NEWEST_FIRST);
                sql.push_str(q::FILE_ROWS_TAIL);
                let mut binds = vec![Bind::Text(owner_id.to_string())];
                binds.extend(args);
                binds.extend(page_binds(page));
                let files = self.read(&self.pool, &sql, binds, rows::file).await?;
                Ok(Page::from_rows(
                    rows::fold_tags(files),
                    page.limit,
                    FileRecord::cursor,
                ))
            }

            /// Given tags replace the file's tags whole (duplicates dropped, order kept).
            async fn update_file(
                &self,
                id: Id,
                change: FileChange,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let mut tx = self.begin_write().await?;
                // The update comes first: on PostgreSQL it locks the file's row, so two
                // racing tag replacements run one after the other.
                let done = sqlx::query(&Self::sql(q::UPDATE_FILE))
                    .bind(change.filename)
                    .bind(change.visibility.map(Visibility::as_str))
                    .bind(now.millis())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                if let Some(tags) = change.tags {
                    sqlx::query(&Self::sql(q::DELETE_FILE_TAGS))
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(repo_error)?;
                    Self::insert_tags(&mut *tx, id, &tags).await?;
                }
                let file = Self::file_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(file)
            }

            /// A file a post uses is not deleted: `Conflict("file_in_use")`.
            async fn delete_file(&self, id: Id) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                match Self::delete_file_in(&mut *tx, id).await? {
                    FileDeletion::Deleted => {
                        tx.commit().await.map_err(repo_error)?;
                        Ok(true)
                    }
                    FileDeletion::Missing => Ok(false),
                    FileDeletion::InUse => Err(RepoError::Conflict("file_in_use".to_owned())),
                }
            }

            async fn begin_upload(&self, id: Id, now: Timestamp) -> RepoResult<bool> {
                self.transition(
                    q::BEGIN_UPLOAD,
                    vec![Bind::Int(now.millis()), Bind::Text(id.to_string())],
                )
                .await
            }

            /// Ignored unless the file is `uploading`.
            async fn record_progress(
                &self,
                id: Id,
                bytes_received: u64,
                now: Timestamp,
            ) -> RepoResult<()> {
                self.transition(
                    q::RECORD_PROGRESS,
                    vec![
                        Bind::Int(to_db("bytes_received", bytes_received)?),
                        Bind::Int(now.millis()),
                        Bind::Text(id.to_string()),
                    ],
                )
                .await
                .map(drop)
            }

            /// Ignored unless the file is `uploading`.
            async fn pause_upload(
                &self,
                id: Id,
                bytes_received: u64,
                now: Timestamp,
            ) -> RepoResult<()> {
                self.transition(
                    q::PAUSE_UPLOAD,
                    vec![
                        Bind::Int(to_db("bytes_received", bytes_received)?),
                        Bind::Int(now.millis()),
                        Bind::Text(id.to_string()),
                    ],
                )
                .await
                .map(drop)
            }

            /// `bytes_received` becomes the declared size. A result status other than
            /// `ready` or `processing` is the caller's mistake and refused.
            async fn complete_upload(
                &self,
                id: Id,
                result: UploadResult,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                if !matches!(result.status, FileStatus::Ready | FileStatus::Processing) {
                    return Err(RepoError::Other(anyhow::anyhow!(
                        "an upload cannot complete as {}",
                        result.status.as_str()
                    )));
                }
                let binds = vec![
                    Bind::Text(result.status.as_str().to_owned()),
                    Bind::Text(result.sha256),
                    Bind::Text(result.md5),
                    Bind::OptInt(result.width.map(i64::from)),
                    Bind::OptInt(result.height.map(i64::from)),
                    Bind::Int(now.millis()),
                    Bind::Text(id.to_string()),
                ];
                self.update_and_read(id, q::COMPLETE_UPLOAD, binds).await
            }

            /// From any state: whether a file may still fail is the caller's decision.
            async fn fail_file(
                &self,
                id: Id,
                failure: Failure,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let binds = vec![
                    Bind::Text(failure.code.as_str().to_owned()),
                    Bind::Text(failure.detail),
                    Bind::Int(now.millis()),
                    Bind::Text(id.to_string()),
                ];
                self.update_and_read(id, q::FAIL_FILE, binds).await
            }

            async fn expire_upload(
                &self,
                id: Id,
                failure: Failure,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let binds = vec![
                    Bind::Text(failure.code.as_str().to_owned()),
                    Bind::Text(failure.detail),
                    Bind::Int(now.millis()),
                    Bind::Text(id.to_string()),
                    Bind::Int(now.millis()),
                ];
                self.update_and_read(id, q::EXPIRE_UPLOAD, binds).await
            }

            async fn recover_stalled_upload(
                &self,
                id: Id,
                bytes_received: u64,
                updated_before: Timestamp,
                now: Timestamp,
            ) -> RepoResult<bool> {
                self.transition(
                    q::RECOVER_STALLED_UPLOAD,
                    vec![
                        Bind::Int(to_db("bytes_received", bytes_received)?),
                        Bind::Int(now.millis()),
                        Bind::Text(id.to_string()),
                        Bind::Int(updated_before.millis()),
                    ],
                )
                .await
            }

            /// Longest expired first.
            async fn expired_uploads(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Id>> {
                self.file_ids_before(q::EXPIRED_UPLOADS, now, limit).await
            }

            async fn stalled_uploads(
                &self,
                updated_before: Timestamp,
                limit: u32,
            ) -> RepoResult<Vec<Id>> {
                self.file_ids_before(q::STALLED_UPLOADS, updated_before, limit)
                    .await
            }

            /// In the order given, each once.
            async fn existing_file_ids(&self, ids: &[Id]) -> RepoResult<Vec<Id>> {
                let mut found = std::collections::HashSet::with_capacity(ids.len());
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let sql = [q::FILE_IDS_IN, &placeholder_list(chunk.len())].concat();
                    let sql = Self::sql(&sql);
                    let query = bind_ids(sqlx::query(&sql), chunk);
                    let rows = query.fetch_all(&self.pool).await.map_err(repo_error)?;
                    for row in &rows {
                        found.insert(parse_id(
                            &row.try_get::<String, _>("id").map_err(repo_error)?,
                        )?);
                    }
                }
                Ok(ids.iter().copied().filter(|id| found.remove(id)).collect())
            }

            async fn usage(&self, owner_id: Id) -> RepoResult<Usage> {
                let binds = vec![Bind::Text(owner_id.to_string())];
                let found = self.read(&self.pool, q::FILE_USAGE, binds, usage).await?;
                Ok(found.into_iter().next().unwrap_or_default())
            }
        }
    };
}

file_repo_adapter!(SqliteRepo, Sqlite);
file_repo_adapter!(PgRepo, Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    fn new_file(size: u64) -> NewFile {
        let owner = Id::new();
        NewFile {
            id: Id::new(),
            owner_id: owner,
            filename: "a.jpg".into(),
            content_type: "image/jpeg".into(),
            size,
            declared_sha256: None,
            declared_md5: None,
            visibility: Visibility::Private,
            tags: Vec::new(),
            created_at: Timestamp::from_millis(0),
            upload_expires_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn content_type_filters_have_an_exact_and_a_prefix_form() {
        assert_eq!(content_type_prefix("image/*"), Some("image/"));
        assert_eq!(content_type_prefix("*/*"), Some(""));
        assert_eq!(content_type_prefix("image/png"), None);
        assert_eq!(content_type_prefix("image*"), None);
        let (sql, args) = filter_clauses(FileFilter {
            content_type: Some("video/*".into()),
            created_after: Some(Timestamp::from_millis(5)),
            ..FileFilter::default()
        });
        assert_eq!(
            sql,
            [q::FILES_WITH_CONTENT_TYPE_PREFIX, q::FILES_CREATED_AFTER].concat()
        );
        assert_eq!(
            args,
            vec![
                Bind::Text("video/".into()),
                Bind::Text("video/".into()),
                Bind::Int(5)
            ]
        );
    }

    #[test]
    fn open_uploads_are_checked_before_bytes() {
        let usage = Usage {
            bytes_stored: 90,
            uploads_open: 2,
        };
        let files = [new_file(10), new_file(5)];
        let allowance = |max_open_uploads, storage_quota| UploadAllowance {
            max_open_uploads,
            storage_quota,
        };
        assert_eq!(check_allowance(usage, &files, allowance(4, 105)), Ok(()));
        assert_eq!(
            check_allowance(usage, &files, allowance(3, 100)),
            Err(AllowanceRefusal::TooManyUploads { open: 4 })
        );
        assert_eq!(
            check_allowance(usage, &files, allowance(4, 104)),
            Err(AllowanceRefusal::QuotaExceeded { used: 105 })
        );
        let huge = [new_file(u64::MAX)];
        assert_eq!(
            check_allowance(usage, &huge, allowance(10, u64::MAX - 1)),
            Err(AllowanceRefusal::QuotaExceeded { used: u64::MAX })
        );
    }

    #[test]
    fn tags_keep_their_first_position() {
        let tags: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(distinct_tags(&tags), vec!["b", "a", "c"]);
    }

    #[test]
    fn failure_codes_round_trip_through_their_text() {
        for code in ErrorCode::ALL {
            assert_eq!(parse_error_code(code.as_str()).ok(), Some(*code));
        }
        assert!(parse_error_code("no_such_code").is_err());
    }
}
