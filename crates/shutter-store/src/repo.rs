//! The [`Repo`] port on SQLite ([`SqliteRepo`]) and PostgreSQL ([`PgRepo`]).
//!
//! Both adapters run the same statements (from [`crate::queries`]) with the same logic, so the
//! trait implementation is written once, in `repo_adapter!`, and expanded for each pool
//! type. What really differs per dialect sits in each adapter's small inherent block:
//! placeholder spelling, how a write transaction starts, and row locking (also used by the
//! `FileRepo`, `JobQueue`, `MediaRepo` and `SocialRepo` adapters in `crate::files`,
//! `crate::jobs`, `crate::media` and `crate::social`).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use shutter_app::ports::{
    IdempotencyBegin, IdempotencyStart, NewComment, NewPost, NewRefreshToken, NewUser,
    RefreshSuccessor, RefreshUse, Repo, RepoError, RepoResult,
};
use shutter_core::domain::{PostStatus, Role, Tier};
use shutter_core::model::{Comment, PostRecord, User};
use shutter_core::{Id, Page, PageRequest, Timestamp};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

use crate::dialect::{numbered_placeholders, placeholder_list};
use crate::error::repo_error;
use crate::inline::{Inline, InlineReader};
use crate::queries as q;
use crate::rows::{self, Bind, Columns};
use crate::write::{self, GatedConn, GatedTx, InlineTx, InlineWriter, PgTx, WriteTx};

/// The [`Repo`], [`FileRepo`](shutter_app::ports::FileRepo),
/// [`JobQueue`](shutter_app::ports::JobQueue) and [`MediaRepo`](shutter_app::ports::MediaRepo)
/// adapter for SQLite (the last three in `crate::files`, `crate::jobs` and `crate::media`).
#[derive(Clone, Debug)]
pub struct SqliteRepo {
    /// Reads, on as many connections as the pool allows (WAL: they never wait for a writer).
    pub(crate) pool: SqlitePool,
    /// Writes: a pool of one connection (see [`crate::open`]), so the writers of this process
    /// queue for it in order instead of polling SQLite's lock.
    pub(crate) writer: SqlitePool,
    /// Reads that may lag: the readers' pool (SQLite has no replica).
    pub(crate) lagging: SqlitePool,
    /// The hot reads, on the calling thread (see [`crate::inline`]); without it they go
    /// through `pool` like the others.
    pub(crate) inline: Option<Arc<InlineReader>>,
    /// The turn to write, taken by every write of this process, and the hot writes on the
    /// calling thread (see [`crate::write`]).
    pub(crate) writes: InlineWriter,
}

impl SqliteRepo {
    pub fn new(pool: SqlitePool, writer: SqlitePool) -> Self {
        SqliteRepo {
            lagging: pool.clone(),
            pool,
            writer,
            inline: None,
            writes: InlineWriter::new(write::gate()),
        }
    }

    pub(crate) fn with_inline_reader(mut self, reader: Option<Arc<InlineReader>>) -> Self {
        self.inline = reader;
        self
    }

    pub(crate) fn with_inline_writer(mut self, writes: InlineWriter) -> Self {
        self.writes = writes;
        self
    }

    /// Runs one read statement and maps its rows: inline when this repo has an
    /// [`InlineReader`] and the read is short, else on `pool`.
    pub(crate) async fn read<T>(
        &self,
        pool: &SqlitePool,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        if let Some(reader) = &self.inline {
            if let Inline::Done(rows) = reader.fetch(sql, &binds, map)? {
                return Ok(rows);
            }
        }
        Self::read_pooled(pool, sql, binds, map).await
    }

    /// SQLite already speaks `?`.
    pub(crate) fn sql(text: &str) -> Cow<'_, str> {
        Cow::Borrowed(text)
    }

    /// Write transactions take the write lock up front (`BEGIN IMMEDIATE`). A deferred
    /// transaction that reads first and writes later fails at once with `SQLITE_BUSY` when
    /// another writer committed in between, whatever the busy timeout; an immediate one
    /// waits for the lock instead. Writers are thereby serialised, which is also what makes
    /// the read-then-write steps below race-free on SQLite.
    ///
    /// The transaction holds the turn to write (see [`crate::write`]) until it ends.
    pub(crate) async fn begin_write(&self) -> RepoResult<GatedTx> {
        let turn = self.writes.turn().await?;
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(repo_error)?;
        Ok(GatedTx::new(tx, turn))
    }

    /// The writer connection for a statement on its own, holding the turn to write.
    pub(crate) async fn write_conn(&self) -> RepoResult<GatedConn> {
        let turn = self.writes.turn().await?;
        let conn = self.writer.acquire().await.map_err(repo_error)?;
        Ok(GatedConn::new(conn, turn))
    }

    /// A hot write transaction: on the calling thread (see [`crate::write`]).
    pub(crate) async fn begin_hot(&self) -> RepoResult<InlineTx> {
        self.writes.begin().await
    }

    pub(crate) async fn commit_hot(tx: InlineTx) -> RepoResult<()> {
        tx.commit()
    }

    /// A hot write of one statement on its own; says how many rows it changed.
    pub(crate) async fn write_once(&self, sql: &str, binds: Vec<Bind>) -> RepoResult<u64> {
        self.writes.execute(sql, binds).await
    }

    /// A hot write of one statement on its own that returns rows (`RETURNING`).
    pub(crate) async fn write_fetch<T>(
        &self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        self.writes.fetch(sql, binds, map).await
    }

    /// No row locks in SQLite: the immediate transaction already excludes other writers.
    pub(crate) const LOCK_USER: &'static str = "SELECT id FROM users WHERE id = ?";

    /// Nothing to lock either when claiming a job: the claim is one statement, and a write
    /// statement takes the write lock before it reads, so it sees every claim committed
    /// before it and no other can run until it is done (across the connections of a pool
    /// and across processes alike).
    pub(crate) const CLAIM_LOCK: &'static str = "";

    /// Appended to a `SELECT` whose rows the transaction goes on to depend on: nothing to add
    /// in SQLite, for the same reason.
    pub(crate) const FOR_UPDATE: &'static str = "";

    /// Appended to `FOLLOW_PARTY` for the follower and the followee of a follow or unfollow,
    /// and for the author a fan-out step writes entries for: nothing to add in SQLite either
    /// (see `crate::social`).
    pub(crate) const LOCK_FOLLOWER: &'static str = "";
    pub(crate) const LOCK_FOLLOWEE: &'static str = "";
    pub(crate) const FANOUT_AUTHOR_LOCK: &'static str = "";
}

/// The [`Repo`], [`FileRepo`](shutter_app::ports::FileRepo),
/// [`JobQueue`](shutter_app::ports::JobQueue) and [`MediaRepo`](shutter_app::ports::MediaRepo)
/// adapter for PostgreSQL (the last three in `crate::files`, `crate::jobs` and `crate::media`).
#[derive(Clone, Debug)]
pub struct PgRepo {
    pub(crate) pool: PgPool,
    /// The same pool: PostgreSQL writers do not exclude each other.
    pub(crate) writer: PgPool,
    /// Reads that may lag (feeds, explore, public listings): the read replica when there is
    /// one (see [`crate::Database::attach_read_replica`]), else the primary.
    pub(crate) lagging: PgPool,
}

impl PgRepo {
    pub fn new(pool: PgPool) -> Self {
        Self::with_replica(pool, None)
    }

    pub fn with_replica(pool: PgPool, replica: Option<PgPool>) -> Self {
        PgRepo {
            writer: pool.clone(),
            lagging: replica.unwrap_or_else(|| pool.clone()),
            pool,
        }
    }

    pub(crate) fn sql(text: &str) -> Cow<'_, str> {
        numbered_placeholders(text)
    }

    /// Runs one read statement on `pool` and maps its rows.
    pub(crate) async fn read<T>(
        &self,
        pool: &PgPool,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        Self::read_pooled(pool, &Self::sql(sql), binds, map).await
    }

    /// Statements run at READ COMMITTED; the few read-then-write steps lock what they read.
    pub(crate) async fn begin_write(&self) -> RepoResult<Transaction<'static, Postgres>> {
        self.writer.begin().await.map_err(repo_error)
    }

    /// A connection for a statement on its own.
    pub(crate) async fn write_conn(&self) -> RepoResult<sqlx::pool::PoolConnection<Postgres>> {
        self.writer.acquire().await.map_err(repo_error)
    }

    /// The same transactions as [`Self::begin_write`], run through [`WriteTx`].
    pub(crate) async fn begin_hot(&self) -> RepoResult<PgTx> {
        Ok(PgTx(self.begin_write().await?))
    }

    pub(crate) async fn commit_hot(tx: PgTx) -> RepoResult<()> {
        tx.commit().await
    }

    /// One statement on its own; says how many rows it changed.
    pub(crate) async fn write_once(&self, sql: &str, binds: Vec<Bind>) -> RepoResult<u64> {
        let sql = Self::sql(sql);
        let done = bind_all(sqlx::query(&sql), binds)
            .execute(&self.writer)
            .await
            .map_err(repo_error)?;
        Ok(done.rows_affected())
    }

    /// One statement on its own that returns rows (`RETURNING`).
    pub(crate) async fn write_fetch<T>(
        &self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        Self::read_pooled(&self.writer, &Self::sql(sql), binds, map).await
    }

    /// `FOR UPDATE` conflicts with the `FOR KEY SHARE` lock that inserting a row referencing
    /// the user takes, so while a user is being deleted nobody can add a comment, post or
    /// follow that the counter fix-ups would miss.
    pub(crate) const LOCK_USER: &'static str = "SELECT id FROM users WHERE id = ? FOR UPDATE";

    /// Concurrent claims pass over each other's chosen job instead of queueing behind it.
    pub(crate) const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";

    /// Appended to a `SELECT` whose rows the transaction goes on to depend on: they are
    /// locked until it ends, and a statement that waited for a lock reads the row as the
    /// other transaction left it.
    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";

    /// A follow or unfollow locks its two users (in id order, see `crate::social`): the
    /// follower as its counter update would (`NO KEY UPDATE`, which leaves a fan-out free to
    /// write the follower's entries meanwhile), the followee exclusively, which waits for
    /// (and holds off) a fan-out step of the followee's posts, which takes `KEY SHARE` on its
    /// author. So an entry is never written for a follow that is going away, and a follow
    /// never lands between a fan-out's reads and its writes.
    pub(crate) const LOCK_FOLLOWER: &'static str = " FOR NO KEY UPDATE";
    pub(crate) const LOCK_FOLLOWEE: &'static str = " FOR UPDATE";
    /// `KEY SHARE` conflicts only with `FOR UPDATE` (a follow or unfollow of the author, a
    /// delete or publish of their posts, their deletion) and not with counter updates, so
    /// it never closes a cycle with a user deletion that updates the author's counters
    /// while holding a follower's row.
    pub(crate) const FANOUT_AUTHOR_LOCK: &'static str = " FOR KEY SHARE";
}

pub(crate) fn corrupt(what: &str, value: &str) -> RepoError {
    RepoError::Other(anyhow::anyhow!("stored {what} does not parse: {value:?}"))
}

pub(crate) fn parse_id(text: &str) -> RepoResult<Id> {
    text.parse().map_err(|_| corrupt("id", text))
}

/// The cursor's timestamp goes in three times: the plain `<=`/`>=` bound that lets the
/// planners use the index, then the strict comparison and the tie on equal times.
const CURSOR_TIME_BINDS: usize = 3;

/// A query of SQL that ends in a keyset page: binds the cursor, when there is one (for the
/// `…_CURSOR` condition), then the limit plus one (the extra row tells whether a next page
/// exists; see [`Page::from_rows`]).
pub(crate) fn bind_page<'q, DB>(
    query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    page: PageRequest,
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    bind_all(query, page_binds(page))
}

/// Binds each of `binds` in order.
pub(crate) fn bind_all<'q, DB>(
    mut query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    binds: Vec<Bind>,
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for bind in binds {
        query = match bind {
            Bind::Int(n) => query.bind(n),
            Bind::Text(s) => query.bind(s),
            Bind::OptText(s) => query.bind(s),
            Bind::OptInt(n) => query.bind(n),
        };
    }
    query
}

/// What [`bind_page`] binds, as [`Bind`]s.
pub(crate) fn page_binds(page: PageRequest) -> Vec<Bind> {
    let mut binds = Vec::with_capacity(CURSOR_TIME_BINDS + 2);
    if let Some(after) = page.after {
        for _ in 0..CURSOR_TIME_BINDS {
            binds.push(Bind::Int(after.created_at.millis()));
        }
        binds.push(Bind::Text(after.id.to_string()));
    }
    binds.push(Bind::Int(i64::from(page.limit) + 1));
    binds
}

/// Binds each id as text, for a statement ending in [`crate::dialect::placeholder_list`].
pub(crate) fn bind_ids<'q, DB>(
    mut query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    ids: &[Id],
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for id in ids {
        query = query.bind(id.to_string());
    }
    query
}

macro_rules! repo_adapter {
    ($repo:ident, $db:ty) => {
        impl $repo {
            /// Runs one read statement (SQL in `?` placeholders) on `pool` through sqlx
            /// and maps its rows.
            async fn read_pooled<T>(
                pool: &sqlx::Pool<$db>,
                sql: &str,
                binds: Vec<Bind>,
                map: fn(&dyn Columns) -> RepoResult<T>,
            ) -> RepoResult<Vec<T>> {
                let rows = bind_all(sqlx::query(sql), binds)
                    .fetch_all(pool)
                    .await
                    .map_err(repo_error)?;
                rows.iter().map(|row| map(row)).collect()
            }

            fn user_from_row(row: &<$db as sqlx::Database>::Row) -> RepoResult<User> {
                rows::user(row)
            }

            pub(crate) fn post_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> RepoResult<PostRecord> {
                rows::post(row)
            }

            fn comment_from_row(row: &<$db as sqlx::Database>::Row) -> RepoResult<Comment> {
                rows::comment(row)
            }

            async fn user_in<'c, E>(ex: E, id: Id) -> RepoResult<Option<User>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let sql = [q::USER_COLUMNS, q::WHERE_ID].concat();
                let row = sqlx::query(&Self::sql(&sql))
                    .bind(id.to_string())
                    .fetch_optional(ex)
                    .await
                    .map_err(repo_error)?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            /// The post as `viewer` sees it, read inside a write transaction.
            pub(crate) async fn post_in(
                conn: &mut impl WriteTx,
                id: Id,
                viewer: Option<Id>,
            ) -> RepoResult<Option<PostRecord>> {
                let sql = [q::POST_COLUMNS, q::WHERE_POST_ID].concat();
                let binds = vec![
                    Bind::OptText(viewer.map(|v| v.to_string())),
                    Bind::Text(id.to_string()),
                ];
                Ok(conn.fetch(&sql, binds, rows::post).await?.pop())
            }

            async fn comment_in(conn: &mut impl WriteTx, id: Id) -> RepoResult<Option<Comment>> {
                let sql = [q::COMMENT_COLUMNS, q::WHERE_COMMENT_ID].concat();
                let binds = vec![Bind::Text(id.to_string())];
                Ok(conn.fetch(&sql, binds, rows::comment).await?.pop())
            }

            /// Runs one `UPDATE users … WHERE id = ?` and reads the user back, in one
            /// transaction; `None` if no such user.
            async fn update_user<'q>(
                &self,
                id: Id,
                update: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> RepoResult<Option<User>> {
                let mut tx = self.begin_write().await?;
                let done = update.execute(&mut *tx).await.map_err(repo_error)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                let user = Self::user_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(user)
            }

            /// One user selected by `filter` (a `WHERE` clause) with `binds` in order.
            async fn lookup_user(&self, filter: &str, binds: &[&str]) -> RepoResult<Option<User>> {
                let sql = [q::USER_COLUMNS, filter].concat();
                let sql = Self::sql(&sql);
                let mut query = sqlx::query(&sql);
                for value in binds {
                    query = query.bind(*value);
                }
                let row = query.fetch_optional(&self.pool).await.map_err(repo_error)?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            /// Locks the user's row until the transaction ends (see `LOCK_USER`); `false` if
            /// there is no such user.
            /// Marks a live token used, in the caller's transaction (see `use_refresh_token`).
            async fn use_refresh_token_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                token_hash: &str,
                now: Timestamp,
            ) -> RepoResult<RefreshUse> {
                let used = sqlx::query(&Self::sql(q::USE_REFRESH_TOKEN))
                    .bind(now.millis())
                    .bind(token_hash)
                    .bind(now.millis())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                let outcome = if let Some(row) = used {
                    RefreshUse::Fresh {
                        user_id: parse_id(
                            &row.try_get::<String, _>("user_id").map_err(repo_error)?,
                        )?,
                        family_id: parse_id(
                            &row.try_get::<String, _>("family_id").map_err(repo_error)?,
                        )?,
                        expires_at: Timestamp::from_millis(
                            row.try_get("expires_at").map_err(repo_error)?,
                        ),
                    }
                } else {
                    let state = sqlx::query(&Self::sql(q::REFRESH_TOKEN_STATE))
                        .bind(token_hash)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(repo_error)?;
                    match state {
                        None => RefreshUse::Unknown,
                        Some(row) => {
                            let used_at: Option<i64> =
                                row.try_get("used_at").map_err(repo_error)?;
                            let revoked: bool = row.try_get("revoked").map_err(repo_error)?;
                            if used_at.is_some() || revoked {
                                let family: String =
                                    row.try_get("family_id").map_err(repo_error)?;
                                RefreshUse::Reused {
                                    family_id: parse_id(&family)?,
                                }
                            } else {
                                // Live but past its expiry: as good as absent.
                                RefreshUse::Unknown
                            }
                        }
                    }
                };
                Ok(outcome)
            }

            pub(crate) async fn lock_user_in(conn: &mut impl WriteTx, id: Id) -> RepoResult<bool> {
                let found = conn
                    .fetch(
                        Self::LOCK_USER,
                        vec![Bind::Text(id.to_string())],
                        |_| Ok(()),
                    )
                    .await?;
                Ok(!found.is_empty())
            }

            /// The work of `delete_user` once the user is locked: the counters the user feeds
            /// on other rows are taken down, their media links removed, then the user and
            /// everything they own cascade away.
            pub(crate) async fn delete_locked_user_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: Id,
            ) -> RepoResult<()> {
                let id = id.to_string();
                // Each statement names the user once per placeholder.
                for statement in [
                    q::DELETE_USER_UNCOMMENT,
                    q::DELETE_USER_UNLIKE,
                    q::DELETE_USER_UNFOLLOW,
                    q::DELETE_USER_UNFOLLOWED,
                    q::DELETE_USER_UNLINK_MEDIA,
                    q::DELETE_USER_REMEMBER_EXTERNAL,
                    q::DELETE_USER,
                ] {
                    let sql = Self::sql(statement);
                    let mut query = sqlx::query(&sql);
                    for _ in 0..statement.matches('?').count() {
                        query = query.bind(&id);
                    }
                    query.execute(&mut *conn).await.map_err(repo_error)?;
                }
                Ok(())
            }

            /// Inserts the post; a published one counts in its author's `posts_count`.
            pub(crate) async fn insert_post_in(
                conn: &mut impl WriteTx,
                new: &NewPost,
            ) -> RepoResult<()> {
                let binds = vec![
                    Bind::Text(new.id.to_string()),
                    Bind::Text(new.author_id.to_string()),
                    Bind::Text(new.caption.clone()),
                    Bind::Text(new.status.as_str().to_owned()),
                    Bind::Int(new.created_at.millis()),
                    Bind::Int(new.created_at.millis()),
                ];
                conn.execute(q::INSERT_POST, binds).await?;
                if new.status == PostStatus::Published {
                    Self::bump_posts_count_in(&mut *conn, new.author_id, 1).await?;
                }
                Ok(())
            }

            pub(crate) async fn bump_posts_count_in(
                conn: &mut impl WriteTx,
                author_id: Id,
                by: i64,
            ) -> RepoResult<()> {
                let binds = vec![Bind::Int(by), Bind::Text(author_id.to_string())];
                conn.execute(q::BUMP_POSTS_COUNT, binds).await?;
                Ok(())
            }

            /// Locks the author of the post (see `LOCK_USER`); `None` if there is no such post.
            /// Whatever changes a post and its author's counter locks the author first, as
            /// deleting the author does, so two such transactions never wait on each other
            /// in opposite orders.
            pub(crate) async fn lock_post_author_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                post_id: Id,
            ) -> RepoResult<Option<Id>> {
                let row = sqlx::query(&Self::sql(q::POST_AUTHOR))
                    .bind(post_id.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let author = parse_id(&row.try_get::<String, _>("author_id").map_err(repo_error)?)?;
                Ok(Self::lock_user_in(&mut *conn, author)
                    .await?
                    .then_some(author))
            }

            /// Deletes the post (its comments, likes and media links cascade); a published
            /// post takes one from its author's `posts_count`. `false` if absent. The caller
            /// holds the author's lock (`lock_post_author_in`).
            pub(crate) async fn delete_locked_post_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: Id,
            ) -> RepoResult<bool> {
                let deleted = sqlx::query(&Self::sql(q::DELETE_POST))
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(repo_error)?;
                let Some(row) = deleted else {
                    return Ok(false);
                };
                let status: String = row.try_get("status").map_err(repo_error)?;
                if status == PostStatus::Published.as_str() {
                    let author =
                        parse_id(&row.try_get::<String, _>("author_id").map_err(repo_error)?)?;
                    Self::bump_posts_count_in(&mut *conn, author, -1).await?;
                }
                Ok(true)
            }
        }

        #[async_trait]
        impl Repo for $repo {
            async fn ping(&self) -> RepoResult<()> {
                sqlx::query(q::PING)
                    .execute(&self.pool)
                    .await
                    .map_err(repo_error)?;
                Ok(())
            }

            // --- users ---

            async fn create_user(&self, new: NewUser) -> RepoResult<User> {
                let (issuer, subject) = new.external.clone().unzip();
                sqlx::query(&Self::sql(q::INSERT_USER))
                    .bind(new.id.to_string())
                    .bind(&new.username)
                    .bind(&new.display_name)
                    .bind(new.password_hash.as_deref())
                    .bind(issuer)
                    .bind(subject)
                    .bind(new.tier.as_str())
                    .bind(new.role.as_str())
                    .bind(new.created_at.millis())
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                // A new user's row holds nothing the insert did not say (the bio and counters
                // start empty), so it is not read back.
                Ok(User {
                    id: new.id,
                    username: new.username,
                    display_name: new.display_name,
                    bio: String::new(),
                    tier: new.tier,
                    role: new.role,
                    created_at: new.created_at,
                    followers_count: 0,
                    following_count: 0,
                    posts_count: 0,
                })
            }

            async fn user_by_id(&self, id: Id) -> RepoResult<Option<User>> {
                let sql = [q::USER_COLUMNS, q::WHERE_ID].concat();
                let found = self
                    .read(
                        &self.pool,
                        &sql,
                        vec![Bind::Text(id.to_string())],
                        rows::user,
                    )
                    .await?;
                Ok(found.into_iter().next())
            }

            /// Usernames are stored lowercased (a `CHECK` says so), so the lookup lowercases
            /// too and is case-insensitive whatever the caller passes.
            async fn user_by_username(&self, username: &str) -> RepoResult<Option<User>> {
                let username = username.to_ascii_lowercase();
                self.lookup_user(q::WHERE_USERNAME, &[&username]).await
            }

            async fn user_by_external(
                &self,
                issuer: &str,
                subject: &str,
            ) -> RepoResult<Option<User>> {
                self.lookup_user(q::WHERE_EXTERNAL, &[issuer, subject])
                    .await
            }

            async fn external_identity_deleted(
                &self,
                issuer: &str,
                subject: &str,
            ) -> RepoResult<bool> {
                let n: i64 = sqlx::query_scalar(&Self::sql(q::EXTERNAL_IDENTITY_DELETED))
                    .bind(issuer)
                    .bind(subject)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(repo_error)?;
                Ok(n > 0)
            }

            async fn password_hash(&self, user_id: Id) -> RepoResult<Option<String>> {
                let row = sqlx::query(&Self::sql(q::PASSWORD_HASH))
                    .bind(user_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(repo_error)?;
                match row {
                    Some(row) => row.try_get("password_hash").map_err(repo_error),
                    None => Ok(None),
                }
            }

            async fn update_profile(
                &self,
                id: Id,
                display_name: Option<String>,
                bio: Option<String>,
            ) -> RepoResult<Option<User>> {
                let sql = Self::sql(q::UPDATE_PROFILE);
                let update = sqlx::query(&sql)
                    .bind(display_name)
                    .bind(bio)
                    .bind(id.to_string());
                self.update_user(id, update).await
            }

            async fn set_tier(&self, id: Id, tier: Tier) -> RepoResult<Option<User>> {
                let sql = Self::sql(q::SET_TIER);
                let update = sqlx::query(&sql).bind(tier.as_str()).bind(id.to_string());
                self.update_user(id, update).await
            }

            async fn set_role(&self, id: Id, role: Role) -> RepoResult<Option<User>> {
                let sql = Self::sql(q::SET_ROLE);
                let update = sqlx::query(&sql).bind(role.as_str()).bind(id.to_string());
                self.update_user(id, update).await
            }

            async fn delete_user(&self, id: Id) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                if !Self::lock_user_in(&mut *tx, id).await? {
                    return Ok(false);
                }
                Self::delete_locked_user_in(&mut *tx, id).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(true)
            }

            // --- refresh tokens ---

            async fn insert_refresh_token(&self, token: NewRefreshToken) -> RepoResult<()> {
                sqlx::query(&Self::sql(q::INSERT_REFRESH_TOKEN))
                    .bind(&token.token_hash)
                    .bind(token.family_id.to_string())
                    .bind(token.user_id.to_string())
                    .bind(token.created_at.millis())
                    .bind(token.expires_at.millis())
                    .bind(false)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(())
            }

            async fn use_refresh_token(
                &self,
                token_hash: &str,
                now: Timestamp,
            ) -> RepoResult<RefreshUse> {
                let mut tx = self.begin_write().await?;
                let outcome = Self::use_refresh_token_in(&mut *tx, token_hash, now).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(outcome)
            }

            /// One transaction: the presented token is marked used, the family is checked
            /// for a revocation, the successor is inserted. A replay's revocation therefore
            /// comes either before (the rotation fails as `Reused`) or after (and finds the
            /// successor).
            async fn rotate_refresh_token(
                &self,
                token_hash: &str,
                successor: RefreshSuccessor,
                now: Timestamp,
            ) -> RepoResult<RefreshUse> {
                let mut tx = self.begin_write().await?;
                let outcome = Self::use_refresh_token_in(&mut *tx, token_hash, now).await?;
                if let RefreshUse::Fresh {
                    user_id, family_id, ..
                } = &outcome
                {
                    let revoked = sqlx::query(&Self::sql(q::REFRESH_FAMILY_REVOKED))
                        .bind(family_id.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(repo_error)?
                        .is_some();
                    if revoked {
                        // Rolled back: the presented token stays as it was.
                        return Ok(RefreshUse::Reused {
                            family_id: *family_id,
                        });
                    }
                    sqlx::query(&Self::sql(q::INSERT_REFRESH_TOKEN))
                        .bind(&successor.token_hash)
                        .bind(family_id.to_string())
                        .bind(user_id.to_string())
                        .bind(now.millis())
                        .bind(successor.expires_at.millis())
                        .bind(false)
                        .execute(&mut *tx)
                        .await
                        .map_err(repo_error)?;
                }
                tx.commit().await.map_err(repo_error)?;
                Ok(outcome)
            }

            /// Repeated until nothing is left to revoke: on PostgreSQL a rotation that
            /// commits while the update waits for its row adds a successor the update's
            /// snapshot does not see; the next round does.
            async fn revoke_refresh_family(&self, family_id: Id) -> RepoResult<()> {
                loop {
                    let done = sqlx::query(&Self::sql(q::REVOKE_REFRESH_FAMILY))
                        .bind(true)
                        .bind(family_id.to_string())
                        .execute(&mut *self.write_conn().await?)
                        .await
                        .map_err(repo_error)?;
                    if done.rows_affected() == 0 {
                        return Ok(());
                    }
                }
            }

            async fn refresh_family_of(&self, token_hash: &str) -> RepoResult<Option<Id>> {
                let row = sqlx::query(&Self::sql(q::REFRESH_FAMILY_OF))
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(repo_error)?;
                match row {
                    Some(row) => Ok(Some(parse_id(
                        &row.try_get::<String, _>("family_id").map_err(repo_error)?,
                    )?)),
                    None => Ok(None),
                }
            }

            // --- posts ---

            async fn create_post(&self, new: NewPost) -> RepoResult<PostRecord> {
                let mut tx = self.begin_hot().await?;
                Self::insert_post_in(&mut tx, &new).await?;
                let post = Self::post_in(&mut tx, new.id, None).await?.ok_or_else(|| {
                    RepoError::Other(anyhow::anyhow!("post {} vanished while created", new.id))
                })?;
                Self::commit_hot(tx).await?;
                Ok(post)
            }

            async fn post_by_id(
                &self,
                id: Id,
                viewer: Option<Id>,
            ) -> RepoResult<Option<PostRecord>> {
                let sql = [q::POST_COLUMNS, q::WHERE_POST_ID].concat();
                let binds = vec![
                    Bind::OptText(viewer.map(|v| v.to_string())),
                    Bind::Text(id.to_string()),
                ];
                let found = self.read(&self.pool, &sql, binds, rows::post).await?;
                Ok(found.into_iter().next())
            }

            async fn published_posts(&self, ids: &[Id]) -> RepoResult<Vec<PostRecord>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = [
                    q::POST_COLUMNS,
                    q::PUBLISHED_AMONG,
                    &placeholder_list(ids.len()),
                ]
                .concat();
                let mut binds = vec![Bind::OptText(None)];
                binds.extend(rows::id_binds(ids));
                self.read(&self.pool, &sql, binds, rows::post).await
            }

            /// Only the author may edit a caption, so `liked_by_me` is the author's.
            async fn update_post_caption(
                &self,
                id: Id,
                caption: String,
                now: Timestamp,
            ) -> RepoResult<Option<PostRecord>> {
                let mut tx = self.begin_write().await?;
                let updated = sqlx::query(&Self::sql(q::UPDATE_POST_CAPTION))
                    .bind(caption)
                    .bind(now.millis())
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                let Some(row) = updated else {
                    return Ok(None);
                };
                let author = parse_id(&row.try_get::<String, _>("author_id").map_err(repo_error)?)?;
                let post = Self::post_in(&mut *tx, id, Some(author)).await?;
                tx.commit().await.map_err(repo_error)?;
                Ok(post)
            }

            /// The post's media links go with it, its media files stay (see
            /// `MediaRepo::delete_post_with_media` for deleting them too).
            async fn delete_post(&self, id: Id) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                if Self::lock_post_author_in(&mut *tx, id).await?.is_none()
                    || !Self::delete_locked_post_in(&mut *tx, id).await?
                {
                    return Ok(false);
                }
                tx.commit().await.map_err(repo_error)?;
                Ok(true)
            }

            async fn posts_by_author(
                &self,
                author_id: Id,
                include_unpublished: bool,
                viewer: Option<Id>,
                page: PageRequest,
            ) -> RepoResult<Page<PostRecord>> {
                let mut sql = [q::POST_COLUMNS, q::WHERE_POSTS_OF_AUTHOR].concat();
                if page.after.is_some() {
                    sql.push_str(q::POSTS_BEFORE_CURSOR);
                }
                sql.push_str(q::POSTS_NEWEST_FIRST);
                let sql = Self::sql(&sql);
                let query = sqlx::query(&sql)
                    .bind(viewer.map(|v| v.to_string()))
                    .bind(author_id.to_string())
                    .bind(include_unpublished);
                // The author's own listing (with unpublished posts) reads its own writes.
                let pool = if include_unpublished {
                    &self.pool
                } else {
                    &self.lagging
                };
                let rows = bind_page(query, page)
                    .fetch_all(pool)
                    .await
                    .map_err(repo_error)?;
                let posts = rows
                    .iter()
                    .map(Self::post_from_row)
                    .collect::<RepoResult<Vec<_>>>()?;
                Ok(Page::from_rows(posts, page.limit, PostRecord::cursor))
            }

            // --- comments ---

            async fn create_comment(&self, new: NewComment) -> RepoResult<Comment> {
                let mut tx = self.begin_hot().await?;
                let binds = vec![
                    Bind::Text(new.id.to_string()),
                    Bind::Text(new.post_id.to_string()),
                    Bind::Text(new.author_id.to_string()),
                    Bind::Text(new.text.clone()),
                    Bind::Int(new.created_at.millis()),
                    Bind::Int(new.created_at.millis()),
                ];
                tx.execute(q::INSERT_COMMENT, binds).await?;
                let binds = vec![Bind::Int(1), Bind::Text(new.post_id.to_string())];
                tx.execute(q::BUMP_COMMENT_COUNT, binds).await?;
                let comment = Self::comment_in(&mut tx, new.id).await?.ok_or_else(|| {
                    RepoError::Other(anyhow::anyhow!("comment {} vanished while created", new.id))
                })?;
                Self::commit_hot(tx).await?;
                Ok(comment)
            }

            async fn comment_by_id(&self, id: Id) -> RepoResult<Option<Comment>> {
                let sql = [q::COMMENT_COLUMNS, q::WHERE_COMMENT_ID].concat();
                let binds = vec![Bind::Text(id.to_string())];
                Ok(self
                    .read(&self.pool, &sql, binds, rows::comment)
                    .await?
                    .pop())
            }

            async fn delete_comment(&self, id: Id) -> RepoResult<bool> {
                let mut tx = self.begin_write().await?;
                let deleted = sqlx::query(&Self::sql(q::DELETE_COMMENT))
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                let Some(row) = deleted else {
                    return Ok(false);
                };
                let post_id: String = row.try_get("post_id").map_err(repo_error)?;
                sqlx::query(&Self::sql(q::BUMP_COMMENT_COUNT))
                    .bind(-1i64)
                    .bind(post_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(repo_error)?;
                tx.commit().await.map_err(repo_error)?;
                Ok(true)
            }

            async fn comments_of_post(
                &self,
                post_id: Id,
                page: PageRequest,
            ) -> RepoResult<Page<Comment>> {
                let mut sql = [q::COMMENT_COLUMNS, q::WHERE_COMMENTS_OF_POST].concat();
                if page.after.is_some() {
                    sql.push_str(q::COMMENTS_AFTER_CURSOR);
                }
                sql.push_str(q::COMMENTS_OLDEST_FIRST);
                let sql = Self::sql(&sql);
                let query = sqlx::query(&sql).bind(post_id.to_string());
                let rows = bind_page(query, page)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(repo_error)?;
                let comments = rows
                    .iter()
                    .map(Self::comment_from_row)
                    .collect::<RepoResult<Vec<_>>>()?;
                Ok(Page::from_rows(comments, page.limit, Comment::cursor))
            }

            async fn latest_comments(
                &self,
                post_ids: &[Id],
                per_post: u32,
            ) -> RepoResult<Vec<Comment>> {
                if post_ids.is_empty() || per_post == 0 {
                    return Ok(Vec::new());
                }
                let sql = [
                    q::LATEST_COMMENTS_HEAD,
                    &placeholder_list(post_ids.len()),
                    q::LATEST_COMMENTS_TAIL,
                ]
                .concat();
                let mut binds = rows::id_binds(post_ids);
                binds.push(Bind::Int(i64::from(per_post)));
                self.read(&self.pool, &sql, binds, rows::comment).await
            }

            // --- idempotency ---

            /// A mismatching request hash wins over "in flight": reusing a key for another
            /// request is the client's mistake whatever the first request's progress.
            async fn idempotency_begin(
                &self,
                start: IdempotencyStart,
            ) -> RepoResult<IdempotencyBegin> {
                let user_id = start.user_id.to_string();
                let mut tx = self.begin_write().await?;
                // The record can vanish between the claim and the read (a concurrent abandon
                // on PostgreSQL); then the claim is simply tried again.
                for _ in 0..3 {
                    let claimed = sqlx::query(&Self::sql(q::IDEMPOTENCY_CLAIM))
                        .bind(&user_id)
                        .bind(&start.key)
                        .bind(&start.request_hash)
                        .bind(start.now.millis())
                        .bind(start.expired_before.millis())
                        .bind(start.stale_before.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(repo_error)?;
                    if claimed.rows_affected() > 0 {
                        tx.commit().await.map_err(repo_error)?;
                        return Ok(IdempotencyBegin::Started);
                    }
                    let record = sqlx::query(&Self::sql(q::IDEMPOTENCY_RECORD))
                        .bind(&user_id)
                        .bind(&start.key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(repo_error)?;
                    let Some(row) = record else { continue };
                    let hash: String = row.try_get("request_hash").map_err(repo_error)?;
                    let status: Option<i32> = row.try_get("status").map_err(repo_error)?;
                    let body: Option<String> = row.try_get("body").map_err(repo_error)?;
                    tx.commit().await.map_err(repo_error)?;
                    return Ok(if hash != start.request_hash {
                        IdempotencyBegin::Mismatch
                    } else {
                        match status {
                            None => IdempotencyBegin::InFlight,
                            Some(status) => IdempotencyBegin::Replay {
                                status: u16::try_from(status)
                                    .map_err(|_| corrupt("response status", &status.to_string()))?,
                                body: body.unwrap_or_default(),
                            },
                        }
                    });
                }
                Err(RepoError::Other(anyhow::anyhow!(
                    "idempotency record kept vanishing while it was claimed"
                )))
            }

            async fn idempotency_complete(
                &self,
                user_id: Id,
                key: &str,
                status: u16,
                body: &str,
            ) -> RepoResult<()> {
                sqlx::query(&Self::sql(q::IDEMPOTENCY_COMPLETE))
                    .bind(i32::from(status))
                    .bind(body)
                    .bind(user_id.to_string())
                    .bind(key)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(())
            }

            async fn idempotency_abandon(&self, user_id: Id, key: &str) -> RepoResult<()> {
                sqlx::query(&Self::sql(q::IDEMPOTENCY_ABANDON))
                    .bind(user_id.to_string())
                    .bind(key)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(())
            }
        }
    };
}

repo_adapter!(SqliteRepo, Sqlite);
repo_adapter!(PgRepo, Postgres);
