//! Shutter's metadata storage: the [`Repo`], [`FileRepo`], [`JobQueue`], [`MediaRepo`] and
//! [`SocialRepo`] ports on SQLite (the embedded default) and on PostgreSQL (scale-out), with
//! the migrations of each dialect.
//!
//! Start with [`open`], run [`Database::migrate`], then hand [`Database::repo`],
//! [`Database::file_repo`], [`Database::job_queue`], [`Database::media_repo`] and
//! [`Database::social_repo`] to the use cases. Both adapters run the same SQL (`queries.rs`)
//! through one implementation per port (`repo.rs`, `files.rs`, `jobs.rs`, `media.rs`,
//! `social.rs`); `tests/conformance` proves they behave the same.
//!
//! **Invariant:** all SQL of Shutter lives in this crate, and every `Repo`, `FileRepo` and
//! `MediaRepo` method is one transaction that keeps the stored counters exact (`SocialRepo`
//! too, except `like_count`, which lags the likes until `SocialRepo::recount_likes`). A job that must follow a
//! state change is enqueued in that change's transaction (`insert_job`, see `jobs.rs`).

mod dialect;
mod error;
mod files;
mod inline;
mod jobs;
mod locks;
mod media;
mod queries;
mod relay;
mod repo;
mod rows;
mod social;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shutter_app::ports::{FileRepo, JobQueue, MediaRepo, Repo, SocialRepo};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use locks::PgWriterLocks;
pub use relay::PgEventRelay;
pub use repo::{PgRepo, SqliteRepo};

/// How long a request waits for a pooled connection before the database counts as
/// unavailable (`RepoError::Unavailable`, a 503 to clients).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A replica that does not give a connection this fast fails its read (503) soon, rather
/// than holding the request as long as the primary would.
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long SQLite waits for another connection's write lock before giving up with
/// `SQLITE_BUSY` (also reported as unavailable).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum DatabasePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The metadata database: a pool plus what to build on it.
#[derive(Clone, Debug)]
pub struct Database {
    pool: DatabasePool,
    /// SQLite only: the one connection this process writes through (see [`open`]).
    sqlite_writer: Option<SqlitePool>,
    /// SQLite only: the hot reads, on the calling thread (see [`inline`]).
    sqlite_inline: Option<Arc<inline::InlineReader>>,
    /// SQLite only: the turn to write and the hot writes on the calling thread (see [`write`]).
    sqlite_writes: Option<write::InlineWriter>,
    /// PostgreSQL only: the read replica for reads that may lag (`database.read_url`).
    replica: Option<PgPool>,
}

/// Opens a pool of up to `max_connections` to `url`: `sqlite://path` (the file and its parent
/// directory are created if missing; `sqlite::memory:` is refused, as every pooled connection
/// would see its own empty database) or `postgres://…` / `postgresql://…`.
///
/// PostgreSQL is connected to at once, so a server that is down fails here rather than on
/// the first request.
///
/// On SQLite, writes go through one more connection of their own. SQLite lets one
/// transaction write at a time; writers on several connections would each poll for the lock
/// (its busy handler sleeps up to 100 ms between tries, in no order), so under a burst of
/// writes the lock sits idle between tries and a writer can lose every race until its busy
/// timeout. Queued for one connection in the pool's first-come order, writers follow each
/// other at once. Reads keep the other connections and, in WAL mode, never wait for the writer.
pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Database> {
    let max_connections = max_connections.max(1);
    let mut sqlite_writer = None;
    let mut sqlite_inline = None;
    let mut sqlite_writes = None;
    let pool = if let Some(path) = sqlite_path(url) {
        let (pool, writer) = open_sqlite(url, path, max_connections).await?;
        sqlite_writer = Some(writer);
        let conn = write::InlineConn::open(Path::new(path))
            .with_context(|| format!("cannot open the SQLite database {path}"))?;
        sqlite_writes = Some(write::InlineWriter::new(Arc::new(tokio::sync::Mutex::new(
            Some(conn),
        ))));
        sqlite_inline = Some(Arc::new(
            inline::InlineReader::open(Path::new(path))
                .with_context(|| format!("cannot open the SQLite database {path}"))?,
        ));
        DatabasePool::Sqlite(pool)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = pg_pool_options(max_connections, ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL")?;
        DatabasePool::Postgres(pool)
    } else {
        anyhow::bail!("unsupported database URL (expected sqlite://… or postgres://…)");
    };
    Ok(Database {
        pool,
        sqlite_writer,
        sqlite_inline,
        sqlite_writes,
        replica: None,
    })
}

/// A PostgreSQL pool's options. sqlx pings every idle connection before lending it by
/// default, a round trip before each statement under load; here only a connection idle long
/// enough to have lost its server is pinged ([`alive_if_idle`]).
fn pg_pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(alive_if_idle(conn, meta)))
}

/// A pooled PostgreSQL connection idle for longer than this is pinged before it is lent.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether a PostgreSQL connection about to be lent may be used: one in use within the last
/// [`PING_AFTER_IDLE`] is; an older one must answer a ping (one whose server went away is
/// dropped, and the pool opens another).
async fn alive_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for < PING_AFTER_IDLE {
        return Ok(true);
    }
    sqlx::Connection::ping(conn).await.map(|()| true)
}

/// Answers when the read replica does.
struct ReplicaCheck(PgPool);

#[async_trait::async_trait]
impl shutter_app::ports::OptionalBackend for ReplicaCheck {
    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.0)
            .await
            .context("the read replica does not answer")?;
        Ok(())
    }
}

/// Claims the embedded database for one `shutter serve`: an exclusive lock on
/// `<database file>.serve-lock`, held while the returned file is open (the process's end
/// releases it, however it ends). A second `serve` on the same file is refused: the
/// embedded database serves one node, whose process makes every change (its cache of
/// published posts, and its recovery of uploads at start, count on it). `None` for
/// PostgreSQL, which any number of nodes share. `shutter worker` processes take no lock.
pub fn claim_embedded_node(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = sqlite_path(url) else {
        return Ok(None);
    };
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(None);
    }
    let lock_path = format!("{path}.serve-lock");
    if let Some(parent) = Path::new(&lock_path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `shutter serve` is running on the SQLite database {path}: the embedded \
             database serves one node (run more nodes on PostgreSQL; `shutter worker` \
             processes may run beside it)"
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {lock_path}")))
        }
    }
}

/// The file path of a `sqlite:` URL, without query parameters; `None` for other schemes.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split_once('?').map_or(rest, |(path, _)| path))
}

/// How often the checkpointer copies committed pages from the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Checkpoints the WAL every [`CHECKPOINT_INTERVAL`] on a connection of its own until the
/// writer pool is closed. By default SQLite checkpoints inside the commit that pushes the
/// WAL over 1 000 pages, on the committing connection — here the one writer — and the
/// checkpoint's fsync then holds up every queued write (a fan-out batch dirties thousands of
/// index pages, so nearly every batch paid one). Run apart (`PASSIVE`: it never waits for
/// the writer or readers, and copies what it can), the fsync costs the writer nothing.
async fn checkpointer(options: SqliteConnectOptions, writer: SqlitePool) {
    let mut conn: Option<sqlx::SqliteConnection> = None;
    while !writer.is_closed() {
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        if writer.is_closed() {
            break;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match sqlx::ConnectOptions::connect(&options).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the SQLite checkpointer cannot connect");
                    continue;
                }
            },
        };
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *c)
            .await
        {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
            conn = None;
        }
    }
    if let Some(c) = conn {
        let _ = sqlx::Connection::close(c).await;
    }
}

/// Whether a connection going back to its pool may be used again: not if it is still inside
/// a transaction. A transaction dropped without a commit is rolled back by a `ROLLBACK` the
/// driver queues; when SQLite has already ended the transaction itself (it does on
/// `SQLITE_FULL`, a full disk), that `ROLLBACK` fails and the driver goes on counting the
/// connection as inside one, refusing every later `BEGIN` on it. Such a connection is closed
/// and the pool opens a fresh one. (The round trip waits for the queued `ROLLBACK`; committed
/// transactions, the common case, skip it.)
async fn release_outside_a_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    Ok(!conn.is_in_transaction())
}

/// Opens the readers' pool and the writer's one-connection pool on the SQLite file, and
/// starts the [`checkpointer`] (the writer leaves checkpoints to it).
async fn open_sqlite(
    url: &str,
    path: &str,
    max_connections: u32,
) -> anyhow::Result<(SqlitePool, SqlitePool)> {
    if path.is_empty() || path.starts_with(":memory:") {
        anyhow::bail!("SQLite needs a file path (sqlite://path/to/shutter.db)");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    let options = SqliteConnectOptions::from_str(url)
        .context("invalid SQLite URL")?
        .create_if_missing(true)
        // WAL: readers never block the (single) writer and vice versa.
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable across application crashes in WAL mode; only a power loss may
        // drop the last transactions, a fair price for not syncing every commit.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // After a checkpoint has caught up, the WAL file is cut back to this size.
        .pragma("journal_size_limit", "67108864");
    let pool = |max_connections: u32, options: SqliteConnectOptions| {
        SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings an idle connection before lending it by default: on SQLite a
            // round trip to the connection's thread before every statement or transaction,
            // to find a peer that hung up, which a file never does.
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(release_outside_a_transaction(conn)))
            .connect_with(options)
    };
    // Readers map the database file (up to 256 MiB) instead of copying each page they miss
    // out of the kernel's cache with a read call: a third more reads per second in the
    // benchmark's read mix.
    let readers = pool(
        max_connections,
        options.clone().pragma("mmap_size", "268435456"),
    )
    .await
    .with_context(|| format!("cannot open the SQLite database {path}"))?;
    // The writer also gets a larger page cache (64 MiB), as writes touch index pages all
    // over the feed and follow tables; readers keep SQLite's default.
    let writer = pool(
        1,
        options
            .clone()
            .pragma("wal_autocheckpoint", "0")
            .pragma("cache_size", "-65536"),
    )
    .await
    .with_context(|| format!("cannot open the SQLite database {path}"))?;
    tokio::spawn(checkpointer(options, writer.clone()));
    Ok((readers, writer))
}

impl Database {
    fn sqlite_repo(&self, pool: &SqlitePool) -> SqliteRepo {
        let writer = self.sqlite_writer.as_ref().unwrap_or(pool);
        let repo = SqliteRepo::new(pool.clone(), writer.clone())
            .with_inline_reader(self.sqlite_inline.clone());
        match &self.sqlite_writes {
            Some(writes) => repo.with_inline_writer(writes.clone()),
            None => repo,
        }
    }

    fn pg_repo(&self, pool: &PgPool) -> PgRepo {
        PgRepo::with_replica(pool.clone(), self.replica.clone())
    }

    /// Sends the reads that may lag (feeds, explore, a user's published posts, follower,
    /// following and liker lists) to the PostgreSQL read replica at `url`; everything else,
    /// and every read a request must see its own writes in, stays on the primary. The
    /// replica is connected to lazily: one that is down fails only the reads it takes (503),
    /// and the node starts and runs degraded.
    pub fn attach_read_replica(&mut self, url: &str, max_connections: u32) -> anyhow::Result<()> {
        if !matches!(self.pool, DatabasePool::Postgres(_)) {
            anyhow::bail!("a read replica needs database.url on PostgreSQL");
        }
        let pool = pg_pool_options(max_connections.max(1), REPLICA_ACQUIRE_TIMEOUT)
            .connect_lazy(url)
            .context("database.read_url is not a PostgreSQL URL")?;
        self.replica = Some(pool);
        Ok(())
    }

    /// The read replica as a backend the node runs without, degraded (readiness).
    pub fn replica_check(&self) -> Option<Arc<dyn shutter_app::ports::OptionalBackend>> {
        self.replica.clone().map(|pool| {
            Arc::new(ReplicaCheck(pool)) as Arc<dyn shutter_app::ports::OptionalBackend>
        })
    }

    /// Brings the schema up to date with the migrations embedded for this dialect.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            DatabasePool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
        .with_context(|| format!("{} migrations failed", self.dialect()))?;
        tracing::info!(db.dialect = self.dialect(), "database schema is up to date");
        Ok(())
    }

    /// The [`EventRelay`] between the nodes that share this database: PostgreSQL's
    /// `NOTIFY`/`LISTEN`; none on SQLite, which one node alone uses.
    ///
    /// [`EventRelay`]: shutter_app::ports::EventRelay
    pub fn event_relay(&self) -> Option<Arc<dyn shutter_app::ports::EventRelay>> {
        match &self.pool {
            DatabasePool::Sqlite(_) => None,
            DatabasePool::Postgres(pool) => Some(Arc::new(PgEventRelay::new(pool.clone()))),
        }
    }

    /// Whether one node alone uses this database (SQLite), so that its process makes every
    /// change to it.
    pub fn one_node(&self) -> bool {
        matches!(self.pool, DatabasePool::Sqlite(_))
    }

    /// Locks that keep one writer per upload across the nodes sharing this database
    /// (PostgreSQL advisory locks); none on SQLite, which one node alone uses.
    pub fn writer_locks(&self) -> Option<Arc<dyn shutter_app::ports::WriterLocks>> {
        match &self.pool {
            DatabasePool::Sqlite(_) => None,
            DatabasePool::Postgres(pool) => Some(Arc::new(PgWriterLocks::new(pool.clone()))),
        }
    }

    /// The [`Repo`] adapter over this database's pool.
    pub fn repo(&self) -> Arc<dyn Repo> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => Arc::new(self.sqlite_repo(pool)),
            DatabasePool::Postgres(pool) => Arc::new(self.pg_repo(pool)),
        }
    }

    /// The [`FileRepo`] adapter over this database's pool.
    pub fn file_repo(&self) -> Arc<dyn FileRepo> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => Arc::new(self.sqlite_repo(pool)),
            DatabasePool::Postgres(pool) => Arc::new(self.pg_repo(pool)),
        }
    }

    /// The [`JobQueue`] adapter over this database's pool.
    pub fn job_queue(&self) -> Arc<dyn JobQueue> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => Arc::new(self.sqlite_repo(pool)),
            DatabasePool::Postgres(pool) => Arc::new(self.pg_repo(pool)),
        }
    }

    /// The [`MediaRepo`] adapter over this database's pool.
    pub fn media_repo(&self) -> Arc<dyn MediaRepo> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => Arc::new(self.sqlite_repo(pool)),
            DatabasePool::Postgres(pool) => Arc::new(self.pg_repo(pool)),
        }
    }

    /// The [`SocialRepo`] adapter over this database's pool.
    pub fn social_repo(&self) -> Arc<dyn SocialRepo> {
        match &self.pool {
            DatabasePool::Sqlite(pool) => Arc::new(self.sqlite_repo(pool)),
            DatabasePool::Postgres(pool) => Arc::new(self.pg_repo(pool)),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn dialect(&self) -> &'static str {
        match &self.pool {
            DatabasePool::Sqlite(_) => "sqlite",
            DatabasePool::Postgres(_) => "postgres",
        }
    }

    /// The pool itself, for the other adapters of this crate's database (and for tests that
    /// need to set up rows no port writes yet).
    pub fn pool(&self) -> &DatabasePool {
        &self.pool
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        match &self.pool {
            DatabasePool::Sqlite(pool) => pool.close().await,
            DatabasePool::Postgres(pool) => pool.close().await,
        }
        if let Some(writes) = &self.sqlite_writes {
            writes.close().await;
        }
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        if let Some(reader) = &self.sqlite_inline {
            reader.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_give_their_path() {
        assert_eq!(sqlite_path("sqlite://data/s.db"), Some("data/s.db"));
        assert_eq!(
            sqlite_path("sqlite:///abs/s.db?mode=rwc"),
            Some("/abs/s.db")
        );
        assert_eq!(sqlite_path("sqlite:s.db"), Some("s.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn opening_sqlite_creates_the_file_and_its_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested/deeper/shutter.db");
        let db = open(&format!("sqlite://{}", path.display()), 2).await?;
        assert_eq!(db.dialect(), "sqlite");
        db.migrate().await?;
        db.migrate().await?; // a second run finds nothing to do
        db.repo().ping().await?;
        assert!(path.exists());
        db.close().await;
        Ok(())
    }

    /// Reads on the calling thread stop after their step budget and are answered by the
    /// pool instead; a closed database refuses them as it refuses pooled ones.
    #[tokio::test]
    async fn long_inline_reads_move_to_the_pool() -> anyhow::Result<()> {
        use crate::inline::Inline;
        let dir = tempfile::tempdir()?;
        let db = open(
            &format!("sqlite://{}", dir.path().join("s.db").display()),
            2,
        )
        .await?;
        let (DatabasePool::Sqlite(pool), Some(inline)) = (&db.pool, db.sqlite_inline.clone())
        else {
            anyhow::bail!("not SQLite with an inline reader");
        };
        let repo = db.sqlite_repo(pool);
        let n = |row: &dyn rows::Columns| row.int("n");
        let long = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c \
                    WHERE i < 1000000) SELECT COUNT(*) AS n FROM c";
        assert!(matches!(inline.fetch(long, &[], n)?, Inline::Pooled));
        assert_eq!(repo.read(pool, long, Vec::new(), n).await?, vec![1_000_000]);
        let short = "SELECT ? + 1 AS n";
        let binds = [rows::Bind::Int(6)];
        assert!(matches!(inline.fetch(short, &binds, n)?, Inline::Done(v) if v == vec![7]));
        assert_eq!(repo.read(pool, short, binds.to_vec(), n).await?, vec![7]);
        db.close().await;
        assert!(matches!(
            inline.fetch(short, &binds, n),
            Err(shutter_app::ports::RepoError::Unavailable(_))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn unknown_schemes_and_in_memory_sqlite_are_refused() {
        assert!(open("mysql://h/db", 1).await.is_err());
        assert!(open("sqlite::memory:", 1).await.is_err());
    }
}
