//! The [`MediaRepo`] port on SQLite and PostgreSQL, written once (`media_repo_adapter!`) like
//! the other adapters, on the helpers of [`crate::repo`] (posts, users, row locks) and
//! [`crate::files`] (file rows, the allowance) so that a post with photos is created, and a
//! user deleted, by exactly the steps of `Repo` and `FileRepo`.
//!
//! Every method is one transaction. A delete that leaves stored bytes behind enqueues their
//! `delete_objects` job in that transaction (`insert_job`, see [`crate::jobs`]), and a file
//! completed into `processing` its `process_file` job: the job exists exactly when the change
//! does.
//!
//! Races are settled by locks taken in one order, the author's `users` row before a post or
//! file row (as deleting a user does): creating a post with photos locks the author (so it is
//! serialised with the author's other creations, as `create_files` is) and then the attached
//! files; publishing locks the author and then the post, so of racing publishers the later
//! ones find it published; deleting a file locks the file before looking for a post using it.
//! SQLite has no row locks, but its write transactions run one at a time.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use shutter_app::ports::{
    delete_objects_job, FileDeletion, MediaRepo, NewFile, NewJob, NewPost, PostMedia,
    PostMediaRefusal, PublishOutcome, RepoError, RepoResult, UploadAllowance, UploadResult,
    VariantInfo,
};
use shutter_core::domain::{FileStatus, PostStatus};
use shutter_core::model::{FileRecord, PostRecord};
use shutter_core::{Id, Timestamp};
use sqlx::{Postgres, Row, Sqlite};

use crate::dialect::placeholder_list;
use crate::error::repo_error;
use crate::files::{check_owner, from_db, to_db, IDS_PER_STATEMENT};
use crate::queries as q;
use crate::repo::bind_ids;
use crate::repo::{corrupt, parse_id, PgRepo, SqliteRepo};
use crate::rows::{self, id_binds, Bind, Columns};
use crate::write::WriteTx;

/// Content types a post's photos may have: the images that get processed. Stored content
/// types are lowercased without parameters, so they compare exactly.
const POST_MEDIA_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// What a new post needs to know about a file it wants to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attachable {
    owner_id: Id,
    status: String,
    content_type: String,
    /// Some post already has it.
    used: bool,
}

/// The first of `attach` (in the order given) that the author's post cannot have: absent,
/// someone else's, not `ready`, not a processable image, on a post already, or given twice.
fn first_unavailable(author: Id, attach: &[Id], found: &HashMap<Id, Attachable>) -> Option<Id> {
    let mut seen = HashSet::with_capacity(attach.len());
    attach.iter().copied().find(|id| {
        let usable = found.get(id).is_some_and(|file| {
            file.owner_id == author
                && file.status == FileStatus::Ready.as_str()
                && POST_MEDIA_TYPES.contains(&file.content_type.as_str())
                && !file.used
        });
        !seen.insert(*id) || !usable
    })
}

/// The file ids of `media` as they came, each once (they are unique per the schema).
fn distinct_ids(ids: &[Id]) -> Vec<Id> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// One row of `ATTACHABLE_FILES`, by the file's id.
fn attachable(row: &dyn Columns) -> RepoResult<(Id, Attachable)> {
    Ok((
        parse_id(&row.text("id")?)?,
        Attachable {
            owner_id: parse_id(&row.text("owner_id")?)?,
            status: row.text("status")?,
            content_type: row.text("content_type")?,
            used: row.flag("used")?,
        },
    ))
}

/// A photo's position, for the `INTEGER` column.
fn position_to_db(position: usize) -> RepoResult<i64> {
    i32::try_from(position)
        .map(i64::from)
        .map_err(|_| RepoError::Other(anyhow::anyhow!("position {position} is too large")))
}

fn position_from_db(n: i64) -> RepoResult<u32> {
    u32::try_from(n).map_err(|_| corrupt("media position", &n.to_string()))
}

fn dimension_from_db(what: &str, n: i64) -> RepoResult<u32> {
    u32::try_from(n).map_err(|_| corrupt(what, &n.to_string()))
}

/// `items` ordered by where their key first appears in `order` (stable within a key); keys
/// not in `order` are left out.
fn in_order_of_keys<T>(order: &[Id], items: Vec<T>, key: impl Fn(&T) -> Id) -> Vec<T> {
    let rank: HashMap<Id, usize> = order
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut ranked: Vec<(usize, T)> = items
        .into_iter()
        .filter_map(|item| rank.get(&key(&item)).map(|r| (*r, item)))
        .collect();
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, item)| item).collect()
}

/// A `VARIANTS_OF_FILES` row: the file's id and one variant.
fn variant(row: &dyn Columns) -> RepoResult<(Id, VariantInfo)> {
    Ok((
        parse_id(&row.text("file_id")?)?,
        VariantInfo {
            name: row.text("name")?,
            width: dimension_from_db("variant width", row.int("width")?)?,
            height: dimension_from_db("variant height", row.int("height")?)?,
            size: from_db("variant size", row.int("size")?)?,
        },
    ))
}

/// A `MEDIA_ROWS_HEAD … MEDIA_ROWS_TAIL` row: post, position and the file with one tag.
fn media_row(row: &dyn Columns) -> RepoResult<(Id, u32, FileRecord)> {
    Ok((
        parse_id(&row.text("post_id")?)?,
        position_from_db(row.int("position")?)?,
        rows::file(row)?,
    ))
}

/// Joins the rows of one photo (one per tag, grouped by file) into one, in the same order.
fn fold_media(rows: Vec<(Id, u32, FileRecord)>) -> Vec<(Id, u32, FileRecord)> {
    let mut media: Vec<(Id, u32, FileRecord)> = Vec::with_capacity(rows.len());
    for (post_id, position, row) in rows {
        match media.last_mut() {
            Some((_, _, file)) if file.id == row.id => file.tags.extend(row.tags),
            _ => media.push((post_id, position, row)),
        }
    }
    media
}

macro_rules! media_repo_adapter {
    ($repo:ident, $db:ty) => {
        impl $repo {
            /// The variants of these files (at most [`IDS_PER_STATEMENT`]), by file id, then
            /// smallest first.
            async fn variants_in(&self, file_ids: &[Id]) -> RepoResult<Vec<(Id, VariantInfo)>> {
                if file_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = [
                    q::VARIANTS_OF_FILES,
                    &placeholder_list(file_ids.len()),
                    q::VARIANTS_IN_ORDER,
                ]
                .concat();
                self.read(&self.pool, &sql, rows::id_binds(file_ids), variant)
                    .await
            }

            /// What the attached files are, locked until the transaction ends (see
            /// `q::ATTACHABLE_FILES`).
            async fn attachable_in(
                conn: &mut impl WriteTx,
                ids: &[Id],
            ) -> RepoResult<HashMap<Id, Attachable>> {
                let mut found = HashMap::with_capacity(ids.len());
                for chunk in distinct_ids(ids).chunks(IDS_PER_STATEMENT) {
                    let sql = [
                        q::ATTACHABLE_FILES,
                        &placeholder_list(chunk.len()),
                        Self::FOR_UPDATE,
                    ]
                    .concat();
                    found.extend(conn.fetch(&sql, id_binds(chunk), attachable).await?);
                }
                Ok(found)
            }

            /// Deletes the rows of these files (tags and variants cascade).
            async fn delete_files_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                ids: &[Id],
            ) -> RepoResult<()> {
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let sql = [q::DELETE_FILES_IN, &placeholder_list(chunk.len())].concat();
                    let sql = Self::sql(&sql);
                    let query = bind_ids(sqlx::query(&sql), chunk);
                    query.execute(&mut *conn).await.map_err(repo_error)?;
                }
                Ok(())
            }

            /// Every file id of the owner, for the job that erases their bytes.
            async fn file_ids_of_owner_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner_id: Id,
            ) -> RepoResult<Vec<Id>> {
                let rows = sqlx::query(&Self::sql(q::FILE_IDS_OF_OWNER))
                    .bind(owner_id.to_string())
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                rows.iter()
                    .map(|row| parse_id(&row.try_get::<String, _>("id").map_err(repo_error)?))
                    .collect()
            }
        }

        #[async_trait]
        impl MediaRepo for $repo {
            /// The result's status must be `processing` (anything else is the caller's
            /// mistake and refused, as `FileRepo::complete_upload` refuses `pending`).
            async fn complete_upload_for_processing(
                &self,
                id: Id,
                result: UploadResult,
                job: NewJob,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                if result.status != FileStatus::Processing {
                    return Err(RepoError::Other(anyhow::anyhow!(
                        "an upload with a processing job cannot complete as {}",
                        result.status.as_str()
                    )));
                }
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(&Self::sql(q::COMPLETE_UPLOAD))
                    .bind(FileStatus::Processing.as_str())
                    .bind(result.sha256)
                    .bind(result.md5)
                    .bind(result.width.map(i64::from))
                    .bind(result.height.map(i64::from))
                    .bind(now.millis())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                Self::insert_job(&mut *tx, &job).await?;
                let file = Self::file_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(file)
            }

            /// The given variants replace the file's variants whole.
            async fn finish_processing(
                &self,
                id: Id,
                width: u32,
                height: u32,
                blurhash: String,
                variants: Vec<VariantInfo>,
                now: Timestamp,
            ) -> RepoResult<Option<FileRecord>> {
                let mut tx = self.begin_write().await?;
                // The guarded update comes first: on PostgreSQL it locks the file's row, so a
                // repeated job waits and then finds the file ready, changing nothing.
                let done = sqlx::query(&Self::sql(q::COMPLETE_PROCESSING))
                    .bind(i64::from(width))
                    .bind(i64::from(height))
                    .bind(&blurhash)
                    .bind(now.millis())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query(&Self::sql(q::DELETE_FILE_VARIANTS))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                let insert = Self::sql(q::INSERT_FILE_VARIANT);
                for variant in &variants {
                    sqlx::query(&insert)
                        .bind(id.to_string())
                        .bind(&variant.name)
                        .bind(i64::from(variant.width))
                        .bind(i64::from(variant.height))
                        .bind(to_db("variant size", variant.size)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(repo_error)?;
                }
                let file = Self::file_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(file)
            }

            /// Files in the order given, each file's variants smallest first.
            async fn variants_of(&self, file_ids: &[Id]) -> RepoResult<Vec<(Id, VariantInfo)>> {
                let ids = distinct_ids(file_ids);
                let mut variants = Vec::new();
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    variants.extend(self.variants_in(chunk).await?);
                }
                Ok(in_order_of_keys(&ids, variants, |(id, _)| *id))
            }

            /// `post.status` is not consulted: the post is `pending` exactly when it has
            /// photos. The allowance is checked only when there are new files (attaching
            /// files already stored adds no upload and no bytes).
            async fn create_post_with_media(
                &self,
                post: NewPost,
                new_files: Vec<NewFile>,
                attach: Vec<Id>,
                allowance: UploadAllowance,
            ) -> RepoResult<Result<(PostRecord, Vec<FileRecord>), PostMediaRefusal>> {
                let author = post.author_id;
                check_owner(author, &new_files)?;
                let status = if new_files.is_empty() && attach.is_empty() {
                    PostStatus::Published
                } else {
                    PostStatus::Pending
                };
                let post = NewPost { status, ..post };
                let mut tx = self.begin_hot().await?;
                // Serialised per author from here until commit, like `create_files`. A
                // refusal below drops the transaction, which rolls it back.
                if !Self::lock_user_in(&mut tx, author).await? {
                    return Err(RepoError::Conflict("missing_reference".to_owned()));
                }
                if !new_files.is_empty() {
                    if let Err(refusal) =
                        Self::allowance_in(&mut tx, author, &new_files, allowance).await?
                    {
                        return Ok(Err(PostMediaRefusal::Allowance(refusal)));
                    }
                }
                if !attach.is_empty() {
                    let found = Self::attachable_in(&mut tx, &attach).await?;
                    if let Some(id) = first_unavailable(author, &attach, &found) {
                        return Ok(Err(PostMediaRefusal::FileUnavailable(id)));
                    }
                }
                Self::insert_post_in(&mut tx, &post).await?;
                let created = Self::insert_files_in(&mut tx, author, &new_files).await?;
                let media = new_files.iter().map(|f| f.id).chain(attach.iter().copied());
                for (position, file_id) in media.enumerate() {
                    let binds = vec![
                        Bind::Text(post.id.to_string()),
                        Bind::Text(file_id.to_string()),
                        Bind::Int(position_to_db(position)?),
                    ];
                    tx.execute(q::INSERT_POST_MEDIA, binds).await?;
                }
                let record = Self::post_in(&mut tx, post.id, None)
                    .await?
                    .ok_or_else(|| {
                        RepoError::Other(anyhow::anyhow!("post {} vanished while created", post.id))
                    })?;
                Self::commit_hot(tx).await?;
                Ok(Ok((record, created)))
            }

            /// Posts in the order given (each once), photos by position, each file with its
            /// tags (one statement) and variants (a second one).
            async fn media_of_posts(&self, post_ids: &[Id]) -> RepoResult<Vec<PostMedia>> {
                let post_ids = distinct_ids(post_ids);
                let mut found = Vec::new();
                for chunk in post_ids.chunks(IDS_PER_STATEMENT) {
                    let sql = [
                        q::MEDIA_ROWS_HEAD,
                        &placeholder_list(chunk.len()),
                        q::MEDIA_ROWS_TAIL,
                    ]
                    .concat();
                    let rows = self
                        .read(&self.pool, &sql, rows::id_binds(chunk), media_row)
                        .await?;
                    found.extend(fold_media(rows));
                }
                let found = in_order_of_keys(&post_ids, found, |(post_id, _, _)| *post_id);
                let file_ids: Vec<Id> = found.iter().map(|(_, _, file)| file.id).collect();
                let mut variants: HashMap<Id, Vec<VariantInfo>> = HashMap::new();
                for chunk in file_ids.chunks(IDS_PER_STATEMENT) {
                    for (file_id, variant) in self.variants_in(chunk).await? {
                        variants.entry(file_id).or_default().push(variant);
                    }
                }
                Ok(found
                    .into_iter()
                    .map(|(post_id, position, file)| PostMedia {
                        post_id,
                        position,
                        variants: variants.remove(&file.id).unwrap_or_default(),
                        file,
                    })
                    .collect())
            }

            async fn post_of_file(&self, file_id: Id) -> RepoResult<Option<Id>> {
                let row = sqlx::query(&Self::sql(q::POST_OF_FILE))
                    .bind(file_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(repo_error)?;
                row.map(|row| parse_id(&row.try_get::<String, _>("post_id").map_err(repo_error)?))
                    .transpose()
            }

            /// A pending post without photos is published too (all of none are ready).
            async fn publish_post_if_ready(
                &self,
                post_id: Id,
                now: Timestamp,
            ) -> RepoResult<PublishOutcome> {
                let mut tx = self.begin_write().await?;
                // The author first, then the post: the order in which deleting the author
                // locks them.
                let Some(author) = Self::lock_post_author_in(&mut *tx, post_id).await? else {
                    return Ok(PublishOutcome::NotPending);
                };
                let lock = [q::PENDING_POST, Self::FOR_UPDATE].concat();
                let post = sqlx::query(&Self::sql(&lock))
                    .bind(post_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                let pending = match post {
                    Some(row) => {
                        row.try_get::<String, _>("status").map_err(repo_error)?
                            == PostStatus::Pending.as_str()
                    }
                    None => false,
                };
                if !pending {
                    return Ok(PublishOutcome::NotPending);
                }
                let unready: i64 = sqlx::query(&Self::sql(q::UNREADY_MEDIA))
                    .bind(post_id.to_string())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(repo_error)?
                    .try_get("unready")
                    .map_err(repo_error)?;
                if unready > 0 {
                    return Ok(PublishOutcome::StillPending);
                }
                let done = sqlx::query(&Self::sql(q::SETTLE_PENDING_POST))
                    .bind(PostStatus::Published.as_str())
                    .bind(now.millis())
                    .bind(post_id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Err(RepoError::Other(anyhow::anyhow!(
                        "post {post_id} stopped being pending while locked"
                    )));
                }
                Self::bump_posts_count_in(&mut *tx, author, 1).await?;
                let record = Self::post_in(&mut *tx, post_id, None)
                    .await?
                    .ok_or_else(|| {
                        RepoError::Other(anyhow::anyhow!("post {post_id} vanished while published"))
                    })?;
                tx.commit().await.map_err(repo_error)?;
                Ok(PublishOutcome::Published(record))
            }

            async fn fail_post(&self, post_id: Id, now: Timestamp) -> RepoResult<bool> {
                let done = sqlx::query(&Self::sql(q::SETTLE_PENDING_POST))
                    .bind(PostStatus::Failed.as_str())
                    .bind(now.millis())
                    .bind(post_id.to_string())
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(done.rows_affected() > 0)
            }

            /// The post goes as `Repo::delete_post` deletes it (counters included), its
            /// photos' rows with it; the job names the photos in position order.
            async fn delete_post_with_media(&self, id: Id, now: Timestamp) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                if Self::lock_post_author_in(&mut *tx, id).await?.is_none() {
                    return Ok(false);
                }
                let links = sqlx::query(&Self::sql(q::UNLINK_POST_MEDIA))
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                let mut media = links
                    .iter()
                    .map(|row| {
                        let file_id =
                            parse_id(&row.try_get::<String, _>("file_id").map_err(repo_error)?)?;
                        let position: i32 = row.try_get("position").map_err(repo_error)?;
                        Ok((position, file_id))
                    })
                    .collect::<RepoResult<Vec<_>>>()?;
                if !Self::delete_locked_post_in(&mut *tx, id).await? {
                    return Ok(false);
                }
                media.sort_unstable();
                let file_ids: Vec<Id> = media.into_iter().map(|(_, file_id)| file_id).collect();
                if !file_ids.is_empty() {
                    Self::delete_files_in(&mut *tx, &file_ids).await?;
                    Self::insert_job(&mut *tx, &delete_objects_job(&file_ids, now)).await?;
                }
                tx.commit().await.map_err(repo_error)?;
                Ok(true)
            }

            async fn delete_file_unless_used(
                &self,
                id: Id,
                now: Timestamp,
            ) -> RepoResult<FileDeletion> {
                let mut tx = self.begin_write().await?;
                let outcome = Self::delete_file_in(&mut *tx, id).await?;
                if outcome != FileDeletion::Deleted {
                    return Ok(outcome);
                }
                Self::insert_job(&mut *tx, &delete_objects_job(&[id], now)).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(FileDeletion::Deleted)
            }

            /// No job when the user had no files. The ids are read with the user locked: no
            /// file can be created for them after that (creation locks the user too).
            async fn delete_user_with_objects(&self, id: Id, now: Timestamp) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                if !Self::lock_user_in(&mut *tx, id).await? {
                    return Ok(false);
                }
                let file_ids = Self::file_ids_of_owner_in(&mut *tx, id).await?;
                Self::delete_locked_user_in(&mut *tx, id).await?;
                if !file_ids.is_empty() {
                    Self::insert_job(&mut *tx, &delete_objects_job(&file_ids, now)).await?;
                }
                tx.commit().await.map_err(repo_error)?;
                Ok(true)
            }
        }
    };
}

media_repo_adapter!(SqliteRepo, Sqlite);
media_repo_adapter!(PgRepo, Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    fn attachable(owner_id: Id, status: FileStatus, content_type: &str) -> Attachable {
        Attachable {
            owner_id,
            status: status.as_str().to_owned(),
            content_type: content_type.to_owned(),
            used: false,
        }
    }

    #[test]
    fn attached_files_must_be_the_authors_ready_unused_images() {
        let author = Id::new();
        let [good, other, gif, processing, used, absent] = [(); 6].map(|()| Id::new());
        let mut found = HashMap::new();
        found.insert(good, attachable(author, FileStatus::Ready, "image/webp"));
        found.insert(other, attachable(Id::new(), FileStatus::Ready, "image/png"));
        found.insert(gif, attachable(author, FileStatus::Ready, "image/gif"));
        found.insert(
            processing,
            attachable(author, FileStatus::Processing, "image/jpeg"),
        );
        found.insert(
            used,
            Attachable {
                used: true,
                ..attachable(author, FileStatus::Ready, "image/jpeg")
            },
        );
        assert_eq!(first_unavailable(author, &[good], &found), None);
        for bad in [other, gif, processing, used, absent] {
            assert_eq!(first_unavailable(author, &[good, bad], &found), Some(bad));
        }
        assert_eq!(
            first_unavailable(author, &[good, good], &found),
            Some(good),
            "a file given twice"
        );
        assert_eq!(
            first_unavailable(author, &[gif, other], &found),
            Some(gif),
            "the first in the order given"
        );
    }

    #[test]
    fn items_follow_the_order_of_their_keys() {
        let [a, b, c] = [(); 3].map(|()| Id::new());
        let items = vec![(c, 1), (a, 2), (b, 3), (a, 4), (Id::new(), 5)];
        assert_eq!(
            in_order_of_keys(&[b, a, c, a], items, |(id, _)| *id),
            vec![(b, 3), (a, 2), (a, 4), (c, 1)]
        );
    }
}
