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
use sqlx::query::Query;
use sqlx::{Postgres, Row, Sqlite};

use crate::dialect::placeholder_list;
use crate::error::repo_error;
use crate::queries as q;
use crate::repo::bind_ids;
use crate::repo::{corrupt, page_binds, parse_id, PgRepo, SqliteRepo};
use crate::rows::{self, Bind};

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

            /// Folds the rows of a `FILE_ROWS_HEAD … FILE_ROWS_TAIL` statement, one per tag
            /// and grouped by file, into files in the same order.
            fn files_from_rows(
                rows: &[<$db as sqlx::Database>::Row],
            ) -> RepoResult<Vec<FileRecord>> {
                let files = rows
                    .iter()
                    .map(|row| rows::file(row))
                    .collect::<RepoResult<Vec<_>>>()?;
                Ok(rows::fold_tags(files))
            }

            /// The files with these ids (at most [`IDS_PER_STATEMENT`]), newest first.
            pub(crate) async fn files_by_ids<'c, E>(
                ex: E,
                ids: &[Id],
            ) -> RepoResult<Vec<FileRecord>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = [
                    q::FILE_ROWS_HEAD,
                    q::WHERE_FILE_ID_IN,
                    &placeholder_list(ids.len()),
                    q::FILE_ROWS_TAIL,
                ]
                .concat();
                let sql = Self::sql(&sql);
                let query = bind_ids(sqlx::query(&sql), ids);
                let rows = query.fetch_all(ex).await.map_err(repo_error)?;
                Self::files_from_rows(&rows)
            }

            pub(crate) async fn file_in<'c, E>(ex: E, id: Id) -> RepoResult<Option<FileRecord>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                Ok(Self::files_by_ids(ex, &[id]).await?.pop())
            }

            async fn usage_in<'c, E>(ex: E, owner_id: Id) -> RepoResult<Usage>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let row = sqlx::query(&Self::sql(q::FILE_USAGE))
                    .bind(owner_id.to_string())
                    .fetch_one(ex)
                    .await
                    .map_err(repo_error)?;
                Ok(Usage {
                    uploads_open: from_db(
                        "open uploads",
                        row.try_get("uploads_open").map_err(repo_error)?,
                    )?,
                    bytes_stored: from_db(
                        "stored bytes",
                        row.try_get("bytes_stored").map_err(repo_error)?,
                    )?,
                })
            }

            /// Stores `tags` (duplicates dropped) in their order.
            async fn insert_tags(
                conn: &mut <$db as sqlx::Database>::Connection,
                file_id: Id,
                tags: &[String],
            ) -> RepoResult<()> {
                let insert = Self::sql(q::INSERT_FILE_TAG);
                for (position, tag) in (0i32..).zip(distinct_tags(tags)) {
                    sqlx::query(&insert)
                        .bind(file_id.to_string())
                        .bind(tag)
                        .bind(position)
                        .execute(&mut *conn)
                        .await
                        .map_err(repo_error)?;
                }
                Ok(())
            }

            /// Runs one `UPDATE files … WHERE id = ?` guarded by the file's state and says
            /// whether it matched.
            async fn transition<'q>(
                &self,
                update: Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> RepoResult<bool> {
                let done = update.execute(&self.writer).await.map_err(repo_error)?;
                Ok(done.rows_affected() > 0)
            }

            /// Runs one `UPDATE files … WHERE id = ?` and reads the file back, in one
            /// transaction; `None` when the update matched no row.
            async fn update_and_read<'q>(
                &self,
                id: Id,
                update: Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> RepoResult<Option<FileRecord>> {
                let mut tx = self.begin_write().await.map_err(repo_error)?;
                let done = update.execute(&mut *tx).await.map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                let file = Self::file_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(file)
            }

            /// Whether `files` fit the owner's allowance. The caller holds the owner's lock
            /// (`lock_user_in`), so the usage read stays true until it commits.
            pub(crate) async fn allowance_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner_id: Id,
                files: &[NewFile],
                allowance: UploadAllowance,
            ) -> RepoResult<Result<(), AllowanceRefusal>> {
                let usage = Self::usage_in(&mut *conn, owner_id).await?;
                Ok(check_allowance(usage, files, allowance))
            }

            /// Inserts `files` (all the owner's, see [`check_owner`], `pending`) with their
            /// tags and reads them back in the order given.
            pub(crate) async fn insert_files_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner_id: Id,
                files: &[NewFile],
            ) -> RepoResult<Vec<FileRecord>> {
                let insert = Self::sql(q::INSERT_FILE);
                for file in files {
                    sqlx::query(&insert)
                        .bind(file.id.to_string())
                        .bind(owner_id.to_string())
                        .bind(&file.filename)
                        .bind(&file.content_type)
                        .bind(to_db("size", file.size)?)
                        .bind(&file.declared_sha256)
                        .bind(&file.declared_md5)
                        .bind(file.visibility.as_str())
                        .bind(file.upload_expires_at.millis())
                        .bind(file.created_at.millis())
                        .bind(file.created_at.millis())
                        .execute(&mut *conn)
                        .await
                        .map_err(repo_error)?;
                    Self::insert_tags(&mut *conn, file.id, &file.tags).await?;
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
                let mut tx = self.begin_write().await.map_err(repo_error)?;
                // From here until commit, no other creation for this owner gets past this
                // point, so the usage read below stays true.
                if !Self::lock_user_in(&mut *tx, owner_id).await? {
                    return Err(RepoError::Conflict("missing_reference".to_owned()));
                }
                if let Err(refusal) =
                    Self::allowance_in(&mut *tx, owner_id, &files, allowance).await?
                {
                    tx.rollback().await.map_err(repo_error)?;
                    return Ok(Err(refusal));
                }
                let created = Self::insert_files_in(&mut *tx, owner_id, &files).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(Ok(created))
            }

            async fn file_by_id(&self, id: Id) -> RepoResult<Option<FileRecord>> {
                Self::file_in(&self.pool, id).await
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
                let mut tx = self.begin_write().await.map_err(repo_error)?;
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
                let mut tx = self.begin_write().await.map_err(repo_error)?;
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
                    sqlx::query(&Self::sql(q::BEGIN_UPLOAD))
                        .bind(now.millis())
                        .bind(id.to_string()),
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
                    sqlx::query(&Self::sql(q::RECORD_PROGRESS))
                        .bind(to_db("bytes_received", bytes_received)?)
                        .bind(now.millis())
                        .bind(id.to_string()),
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
                    sqlx::query(&Self::sql(q::PAUSE_UPLOAD))
                        .bind(to_db("bytes_received", bytes_received)?)
                        .bind(now.millis())
                        .bind(id.to_string()),
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
                let sql = Self::sql(q::COMPLETE_UPLOAD);
                let update = sqlx::query(&sql)
                    .bind(result.status.as_str())
                    .bind(result.sha256)
                    .bind(result.md5)
                    .bind(result.width.map(i64::from))
                    .bind(result.height.map(i64::from))
                    .bind(now.millis())
                    .bind(id.to_string());
                self.update_and_read(id, update).await
            }

            /// From any state: whether a file may still fail is the caller's decision.
            async fn fail_file(
                &self,
                id: Id,
                failure: Failure,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let sql = Self::sql(q::FAIL_FILE);
                let update = sqlx::query(&sql)
                    .bind(failure.code.as_str())
                    .bind(failure.detail)
                    .bind(now.millis())
                    .bind(id.to_string());
                self.update_and_read(id, update).await
            }

            async fn expire_upload(
                &self,
                id: Id,
                failure: Failure,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let sql = Self::sql(q::EXPIRE_UPLOAD);
                let update = sqlx::query(&sql)
                    .bind(failure.code.as_str())
                    .bind(failure.detail)
                    .bind(now.millis())
                    .bind(id.to_string())
                    .bind(now.millis());
                self.update_and_read(id, update).await
            }

            async fn recover_stalled_upload(
                &self,
                id: Id,
                bytes_received: u64,
                updated_before: Timestamp,
                now: Timestamp,
            ) -> RepoResult<bool> {
                self.transition(
                    sqlx::query(&Self::sql(q::RECOVER_STALLED_UPLOAD))
                        .bind(to_db("bytes_received", bytes_received)?)
                        .bind(now.millis())
                        .bind(id.to_string())
                        .bind(updated_before.millis()),
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
                Self::usage_in(&self.pool, owner_id).await
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
