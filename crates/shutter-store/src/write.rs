//! Write transactions: one way to run a statement inside one ([`WriteTx`]), whatever runs it,
//! and the embedded database's writes on the calling thread ([`InlineWriter`]).
//!
//! On SQLite every write of this process is serialised: one transaction writes at a time.
//! Through sqlx each statement of it is handed to the writer connection's thread and its
//! result handed back (a ticket was seven such round trips, 70 % of the server's time in
//! the kernel). The hot writes (tickets, posts, comments, likes, follows, queued jobs) run
//! instead on a connection of Shutter's own, inside the task that asks, with no thread
//! switch at all. The other writes still go through sqlx's writer pool.
//!
//! Both kinds take the same [`WriterGate`] first (a fair async mutex, so writers follow each
//! other in arrival order, as they queued for the one pooled connection before), so they
//! never meet at SQLite's lock. An inline write holds its async worker only while its
//! statements run: the hot writes are a handful of indexed statements each, bounded by what
//! one request may carry; waiting (for the gate, or for SQLite's lock held by another
//! process) is an `.await`, never a blocked thread.

use std::future::{ready, Future};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use shutter_app::ports::{RepoError, RepoResult};
use sqlx::{PgConnection, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::dialect::numbered_placeholders;
use crate::error::repo_error;
use crate::repo::bind_all;
use crate::rows::{Bind, Columns, NamedRow};

/// Prepared statements kept by the inline writer.
const STATEMENT_CACHE: usize = 64;

/// A statement run inside a write transaction (or, outside one, on its own). Implemented by
/// sqlx's connections of both dialects (so `&mut *tx` of a sqlx transaction is one) and by
/// the inline writer's. Statements are written with `?` placeholders; PostgreSQL's
/// implementation numbers them.
pub(crate) trait WriteTx: Send {
    /// Runs a statement and says how many rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> impl Future<Output = RepoResult<u64>> + Send;

    /// Runs a statement and maps every row it returns.
    fn fetch<T: Send>(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> impl Future<Output = RepoResult<Vec<T>>> + Send;
}

macro_rules! sqlx_write_tx {
    ($conn:ty, $sql:path) => {
        impl WriteTx for $conn {
            fn execute(
                &mut self,
                sql: &str,
                binds: Vec<Bind>,
            ) -> impl Future<Output = RepoResult<u64>> + Send {
                async move {
                    let sql = $sql(sql);
                    let done = bind_all(sqlx::query(&sql), binds)
                        .execute(&mut *self)
                        .await
                        .map_err(repo_error)?;
                    Ok(done.rows_affected())
                }
            }

            fn fetch<T: Send>(
                &mut self,
                sql: &str,
                binds: Vec<Bind>,
                map: fn(&dyn Columns) -> RepoResult<T>,
            ) -> impl Future<Output = RepoResult<Vec<T>>> + Send {
                async move {
                    let sql = $sql(sql);
                    let rows = bind_all(sqlx::query(&sql), binds)
                        .fetch_all(&mut *self)
                        .await
                        .map_err(repo_error)?;
                    rows.iter().map(|row| map(row)).collect()
                }
            }
        }
    };
}

fn as_is(sql: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}

sqlx_write_tx!(SqliteConnection, as_is);
sqlx_write_tx!(PgConnection, numbered_placeholders);

/// The turn to write on one SQLite database, and the inline writer's connection (`None`
/// once the database is closed, or for a repo without one).
pub(crate) type WriterGate = Arc<Mutex<Option<InlineConn>>>;

/// A new gate without an inline connection.
pub(crate) fn gate() -> WriterGate {
    Arc::new(Mutex::new(None))
}

/// How long a writer waits for its turn (the gate, then SQLite's lock when another process
/// holds it) before the write is refused as unavailable (503), as sqlx's pools do.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes the turn to write, within [`WRITE_TURN_TIMEOUT`].
pub(crate) async fn take_turn(
    gate: &WriterGate,
) -> RepoResult<OwnedMutexGuard<Option<InlineConn>>> {
    tokio::time::timeout(WRITE_TURN_TIMEOUT, gate.clone().lock_owned())
        .await
        .map_err(|_| {
            RepoError::Unavailable(anyhow::anyhow!(
                "no turn to write within {WRITE_TURN_TIMEOUT:?}"
            ))
        })
}

/// A sqlx transaction on SQLite's writer pool, holding the turn to write until it ends.
pub(crate) struct GatedTx {
    // Declared first: dropped (its rollback queued) before the turn passes on.
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<Option<InlineConn>>,
}

impl GatedTx {
    pub(crate) fn new(
        tx: Transaction<'static, Sqlite>,
        turn: OwnedMutexGuard<Option<InlineConn>>,
    ) -> Self {
        GatedTx { tx, _turn: turn }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    #[cfg(test)]
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for GatedTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for GatedTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// A connection of SQLite's writer pool outside a transaction, holding the turn to write.
pub(crate) struct GatedConn {
    conn: sqlx::pool::PoolConnection<Sqlite>,
    _turn: OwnedMutexGuard<Option<InlineConn>>,
}

impl GatedConn {
    pub(crate) fn new(
        conn: sqlx::pool::PoolConnection<Sqlite>,
        turn: OwnedMutexGuard<Option<InlineConn>>,
    ) -> Self {
        GatedConn { conn, _turn: turn }
    }
}

impl Deref for GatedConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for GatedConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// The inline writer's connection to the database file.
#[derive(Debug)]
pub(crate) struct InlineConn {
    conn: Connection,
}

impl InlineConn {
    /// Opens the writer's connection to the file at `path` (which must exist), with the
    /// settings of sqlx's writer connection (see `crate::open_sqlite`).
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // SQLite's lock is waited for by `begin`, asynchronously, never on this thread.
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints are the checkpointer's (see `crate::checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 67_108_864)?;
        // 32 MiB of pages: the hot writes touch the users', posts', files' and likes'
        // indexes, and a fan-out step the feed entries' (sqlx's writer keeps 64 MiB).
        conn.pragma_update(None, "cache_size", -32_768)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(InlineConn { conn })
    }

    fn run_execute(&self, sql: &str, binds: &[Bind]) -> RepoResult<u64> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(write_error)?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(binds))
            .map_err(write_error)?;
        Ok(changed as u64)
    }

    fn run_fetch<T>(
        &self,
        sql: &str,
        binds: &[Bind],
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(write_error)?;
        let names = NamedRow::names_of(&stmt);
        let mut rows = stmt
            .query(rusqlite::params_from_iter(binds))
            .map_err(write_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(write_error)? {
            out.push(map(&NamedRow::new(row, &names))?);
        }
        Ok(out)
    }

    /// Runs `statement` (`BEGIN IMMEDIATE`, or a write on its own), waiting asynchronously
    /// while another process holds SQLite's lock, up to [`WRITE_TURN_TIMEOUT`].
    ///
    /// SQLite queues nobody: a process that writes back to back leaves its lock free only
    /// for the moments between two transactions. So a waiting writer tries again every
    /// millisecond for [`EAGER_RETRIES`] (an idle lock is taken at once, and a busy process
    /// cannot shut this one out), and only then backs off up to 50 ms.
    async fn when_unlocked<T>(
        turn: &mut OwnedMutexGuard<Option<InlineConn>>,
        mut statement: impl FnMut(&InlineConn) -> RepoResult<T>,
    ) -> RepoResult<T> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let conn = turn.as_ref().ok_or_else(closed)?;
            match statement(conn) {
                Err(RepoError::Unavailable(e))
                    if is_busy(&e) && started.elapsed() < WRITE_TURN_TIMEOUT =>
                {
                    tokio::time::sleep(pause).await;
                    if started.elapsed() > EAGER_RETRIES {
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                }
                other => return other,
            }
        }
    }
}

/// How long a writer shut out by another process retries every millisecond.
const EAGER_RETRIES: Duration = Duration::from_millis(250);

/// What `RepoError::Unavailable` holds when SQLite said busy or locked.
fn is_busy(e: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, C::DatabaseBusy | C::DatabaseLocked)
    )
}

fn closed() -> RepoError {
    RepoError::Unavailable(anyhow::anyhow!("the database is closed"))
}

/// Writes on the calling thread, for the repo of one SQLite database.
#[derive(Clone, Debug)]
pub(crate) struct InlineWriter {
    gate: WriterGate,
}

impl InlineWriter {
    pub(crate) fn new(gate: WriterGate) -> Self {
        InlineWriter { gate }
    }

    /// Waits for the turn to write (for a write through sqlx's writer pool).
    pub(crate) async fn turn(&self) -> RepoResult<OwnedMutexGuard<Option<InlineConn>>> {
        take_turn(&self.gate).await
    }

    /// Waits for the turn to write and begins an immediate transaction on the inline
    /// connection; it is rolled back unless [`InlineTx::commit`] is called.
    pub(crate) async fn begin(&self) -> RepoResult<InlineTx> {
        let mut turn = take_turn(&self.gate).await?;
        InlineConn::when_unlocked(&mut turn, |c| c.run_execute("BEGIN IMMEDIATE", &[])).await?;
        Ok(InlineTx { turn, open: true })
    }

    /// One statement on its own (SQLite makes it a transaction of its own).
    pub(crate) async fn execute(&self, sql: &str, binds: Vec<Bind>) -> RepoResult<u64> {
        let mut turn = take_turn(&self.gate).await?;
        InlineConn::when_unlocked(&mut turn, |c| c.run_execute(sql, &binds)).await
    }

    /// One statement on its own that returns rows (`RETURNING`).
    pub(crate) async fn fetch<T>(
        &self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        let mut turn = take_turn(&self.gate).await?;
        InlineConn::when_unlocked(&mut turn, |c| c.run_fetch(sql, &binds, map)).await
    }

    /// Waits for the writers in flight and closes the connection; later writes are
    /// unavailable.
    pub(crate) async fn close(&self) {
        self.gate.lock().await.take();
    }
}

/// An open write transaction of the [`InlineWriter`]. Its statements run through
/// [`WriteTx`] on `&mut *tx`; dropped without [`commit`](Self::commit), it rolls back.
pub(crate) struct InlineTx {
    turn: OwnedMutexGuard<Option<InlineConn>>,
    open: bool,
}

impl InlineTx {
    pub(crate) fn commit(mut self) -> RepoResult<()> {
        self.open = false;
        let conn = self.conn()?;
        match conn.run_execute("COMMIT", &[]) {
            Ok(_) => Ok(()),
            Err(e) => {
                // A failed COMMIT leaves the transaction open (SQLITE_BUSY) or already
                // ended by SQLite: either way nothing of it may stay.
                rollback(conn);
                Err(e)
            }
        }
    }
}

fn rollback(conn: &InlineConn) {
    if !conn.conn.is_autocommit() {
        if let Err(e) = conn.conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "rolling back an inline write failed");
        }
    }
}

impl Drop for InlineTx {
    fn drop(&mut self) {
        if self.open {
            if let Some(conn) = self.turn.as_ref() {
                rollback(conn);
            }
        }
    }
}

impl InlineTx {
    fn conn(&self) -> RepoResult<&InlineConn> {
        self.turn.as_ref().ok_or_else(closed)
    }
}

impl WriteTx for InlineTx {
    fn execute(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> impl Future<Output = RepoResult<u64>> + Send {
        ready(self.conn().and_then(|c| c.run_execute(sql, &binds)))
    }

    fn fetch<T: Send>(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> impl Future<Output = RepoResult<Vec<T>>> + Send {
        ready(self.conn().and_then(|c| c.run_fetch(sql, &binds, map)))
    }
}

/// A PostgreSQL write transaction, run through [`WriteTx`] like the inline writer's.
pub(crate) struct PgTx(pub(crate) Transaction<'static, sqlx::Postgres>);

impl PgTx {
    pub(crate) async fn commit(self) -> RepoResult<()> {
        self.0.commit().await.map_err(repo_error)
    }
}

impl WriteTx for PgTx {
    fn execute(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> impl Future<Output = RepoResult<u64>> + Send {
        WriteTx::execute(&mut *self.0, sql, binds)
    }

    fn fetch<T: Send>(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
        map: fn(&dyn Columns) -> RepoResult<T>,
    ) -> impl Future<Output = RepoResult<Vec<T>>> + Send {
        WriteTx::fetch(&mut *self.0, sql, binds, map)
    }
}

/// As `crate::error::repo_error` for sqlx: a broken uniqueness or reference rule is a
/// conflict; a busy, locked or full database is unavailable for now (503).
pub(crate) fn write_error(err: rusqlite::Error) -> RepoError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(f, message) = &err {
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return RepoError::Conflict(crate::error::unique_rule(
                    message.as_deref().unwrap_or_default(),
                ));
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return RepoError::Conflict("missing_reference".to_owned());
            }
            _ => {}
        }
    }
    crate::inline::repo_error(err)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use shutter_app::ports::NewUser;
    use shutter_core::domain::{Role, Tier};
    use shutter_core::model::User;
    use shutter_core::{Id, Timestamp};

    use super::*;
    use crate::jobs::tests::job;
    use crate::DatabasePool;

    async fn open_db(dir: &tempfile::TempDir) -> anyhow::Result<crate::Database> {
        let db = crate::open(
            &format!("sqlite://{}", dir.path().join("s.db").display()),
            4,
        )
        .await?;
        db.migrate().await?;
        Ok(db)
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            id: Id::new(),
            username: name.to_owned(),
            display_name: name.to_owned(),
            password_hash: None,
            external: None,
            tier: Tier::Basic,
            role: Role::User,
            created_at: Timestamp::from_millis(1),
        }
    }

    async fn user(repo: &Arc<dyn shutter_app::ports::Repo>, id: Id) -> anyhow::Result<User> {
        repo.user_by_id(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user {id} is gone"))
    }

    /// Another process holding SQLite's write lock makes an inline write wait, as an
    /// `.await`: on a runtime of one thread, other tasks (here the one that will let the
    /// lock go) keep running meanwhile, and the write lands once the lock is free.
    #[tokio::test]
    async fn an_inline_write_waits_for_another_process_without_holding_its_thread(
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = open_db(&dir).await?;
        let jobs = db.job_queue();
        let other = Connection::open(dir.path().join("s.db"))?;
        other.execute_batch("BEGIN IMMEDIATE")?;

        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let started = Instant::now();
        let write = tokio::spawn(async move { jobs.enqueue(job()).await });
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            !write.is_finished(),
            "the write went past another process's lock"
        );
        other.execute_batch("COMMIT")?;
        write.await??;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(
            ticks.load(Ordering::Relaxed) >= 10,
            "other tasks stalled while the write waited: {} ticks",
            ticks.load(Ordering::Relaxed)
        );
        ticker.abort();
        assert_eq!(db.job_queue().list_jobs(None, 10).await?.len(), 1);
        db.close().await;
        Ok(())
    }

    /// Inline writes (follows, likes' neighbours) and writes through sqlx's writer pool
    /// (tier changes) run side by side without ever meeting at SQLite's lock, and every
    /// counter comes out exact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_and_pooled_writers_take_turns() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = open_db(&dir).await?;
        let repo = db.repo();
        let social = db.social_repo();
        let star = repo.create_user(new_user("star")).await?;
        let mut fans = Vec::new();
        for i in 0..60 {
            fans.push(repo.create_user(new_user(&format!("fan{i}"))).await?);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, fan) in fans.iter().enumerate() {
            let (social, repo, fan, star) = (social.clone(), repo.clone(), fan.id, star.id);
            tasks.spawn(async move {
                social
                    .follow(fan, star, Timestamp::from_millis(2), 0)
                    .await?;
                let tier = if i % 2 == 0 {
                    Tier::Premium
                } else {
                    Tier::Basic
                };
                repo.set_tier(fan, tier).await?;
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let star = user(&repo, star.id).await?;
        assert_eq!(star.followers_count, 60);
        let premium = {
            let mut n = 0;
            for fan in &fans {
                let fan = user(&repo, fan.id).await?;
                assert_eq!(fan.following_count, 1);
                n += u32::from(fan.tier == Tier::Premium);
            }
            n
        };
        assert_eq!(premium, 30);
        db.close().await;
        Ok(())
    }

    /// A hot transaction that fails half way leaves nothing behind, and the writer's
    /// connection is out of it for the next write.
    #[tokio::test]
    async fn a_failed_inline_transaction_rolls_back() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = open_db(&dir).await?;
        let social = db.social_repo();
        let repo = db.repo();
        let a = repo.create_user(new_user("a")).await?;
        let b = repo.create_user(new_user("b")).await?;
        let DatabasePool::Sqlite(pool) = db.pool() else {
            anyhow::bail!("not SQLite");
        };
        // The counter updates run after the insert; a trigger makes the second one fail.
        sqlx::query(
            "CREATE TRIGGER no_followers BEFORE UPDATE OF followers_count ON users \
             BEGIN SELECT RAISE(ABORT, 'no followers'); END",
        )
        .execute(pool)
        .await?;
        let failed = social
            .follow(a.id, b.id, Timestamp::from_millis(2), 0)
            .await;
        assert!(failed.is_err(), "{failed:?}");
        sqlx::query("DROP TRIGGER no_followers")
            .execute(pool)
            .await?;
        let a_now = user(&repo, a.id).await?;
        assert_eq!(a_now.following_count, 0, "half a follow stayed");
        assert!(
            social
                .follow(a.id, b.id, Timestamp::from_millis(3), 0)
                .await?
        );
        let b_now = user(&repo, b.id).await?;
        assert_eq!(b_now.followers_count, 1);
        db.close().await;
        Ok(())
    }

    /// A closed database refuses inline writes as unavailable.
    #[tokio::test]
    async fn a_closed_database_refuses_inline_writes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = open_db(&dir).await?;
        let jobs = db.job_queue();
        db.close().await;
        assert!(matches!(
            jobs.enqueue(job()).await,
            Err(RepoError::Unavailable(_))
        ));
        Ok(())
    }
}
