//! Reads of the embedded database on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to it
//! and every row back through channels: two thread switches or more per statement, which
//! cost more than the read itself when the pages are in memory (the read mix spent 41 % of
//! the server's time in the kernel switching threads). The hot reads (see
//! `SqliteRepo::read`) run here instead, on connections of this reader, inside the task that
//! asks.
//!
//! Such a read must stay CPU work of a moment, as it holds an async worker thread. So it
//! never waits: no busy timeout (WAL readers wait for no writer; the rare lock of a WAL reset
//! or another process is `SQLITE_BUSY` at once), and it may run [`STEP_BUDGET`] virtual
//! machine steps at most (about a millisecond), after which SQLite interrupts it. Either
//! way the caller gets [`Inline::Pooled`] and runs the statement on the pool's threads, as
//! every read did before: an unusually long read (a post with a hundred thousand comments,
//! a feed pulling big accounts) costs this reader one millisecond, never a stalled worker.
//!
//! No connection is held across an `.await`, so there are at most as many in use as threads
//! running reads at once; idle ones are kept for the next read, with their prepared statements.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags, ToSql};
use shutter_app::ports::{RepoError, RepoResult};

use crate::rows::{Bind, Columns, NamedRow};

/// Idle connections kept beyond this many are closed.
const MAX_IDLE: usize = 16;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// SQLite checks the budget every this many virtual machine steps.
const STEPS_PER_CHECK: i32 = 1_000;
/// Virtual machine steps an inline statement may take (a feed page takes a few tens of
/// thousands) before it is interrupted and left to the pool.
pub(crate) const STEP_BUDGET: u32 = 400_000;

/// What an inline read came to.
pub(crate) enum Inline<T> {
    Done(T),
    /// Not for this thread: run the statement on the pool (busy, or over [`STEP_BUDGET`]).
    Pooled,
}

/// Connections to one SQLite file for reads on the calling thread.
#[derive(Debug)]
pub(crate) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
    closed: AtomicBool,
}

/// A connection and the steps its current statement has taken (its progress handler, set
/// once, counts them and interrupts past [`STEP_BUDGET`]).
#[derive(Debug)]
struct Reader {
    conn: Connection,
    steps: Arc<AtomicU32>,
}

impl InlineReader {
    /// A reader of the database file at `path` (which must exist: the pool's first
    /// connection creates it). One connection is opened at once, so a file that cannot be
    /// read fails here.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let reader = InlineReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        };
        let conn = reader.connect()?;
        reader.give_back(conn);
        Ok(reader)
    }

    fn connect(&self) -> rusqlite::Result<Reader> {
        // Read-write without create: a WAL reader writes its read marks into the `-shm`
        // file; `query_only` keeps the connection from changing anything.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Busy is answered at once (the read goes to the pool), never waited for here.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        // As the sqlx readers: map the file rather than copy each missed page.
        conn.pragma_update(None, "mmap_size", 268_435_456)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let steps = Arc::new(AtomicU32::new(0));
        let counted = steps.clone();
        conn.progress_handler(
            STEPS_PER_CHECK,
            Some(move || {
                counted.fetch_add(STEPS_PER_CHECK.unsigned_abs(), Ordering::Relaxed) >= STEP_BUDGET
            }),
        );
        Ok(Reader { conn, steps })
    }

    fn take(&self) -> rusqlite::Result<Reader> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn give_back(&self, conn: Reader) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE && !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
    }

    /// Closes the idle connections; later reads fail as unavailable, as the pools' do.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    /// Runs `sql` with `binds` and maps every row (one statement, one snapshot), or says to
    /// run it on the pool.
    pub(crate) fn fetch<T>(
        &self,
        sql: &str,
        binds: &[Bind],
        map: impl Fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Inline<Vec<T>>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RepoError::Unavailable(anyhow::anyhow!(
                "the database is closed"
            )));
        }
        let reader = self.take().map_err(repo_error)?;
        reader.steps.store(0, Ordering::Relaxed);
        let result = run(&reader.conn, sql, binds, map);
        match result {
            Ok(rows) => {
                self.give_back(reader);
                Ok(Inline::Done(rows))
            }
            Err(Stop::Pooled) => {
                self.give_back(reader);
                Ok(Inline::Pooled)
            }
            // A connection whose statement failed otherwise is closed rather than reused.
            Err(Stop::Failed(e)) => Err(e),
        }
    }
}

/// Why a statement stopped before its last row.
enum Stop {
    /// Busy, locked or over budget: for the pool.
    Pooled,
    Failed(RepoError),
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    C::DatabaseBusy | C::DatabaseLocked | C::OperationInterrupted
                ) =>
            {
                Stop::Pooled
            }
            _ => Stop::Failed(repo_error(e)),
        }
    }
}

impl From<RepoError> for Stop {
    fn from(e: RepoError) -> Self {
        Stop::Failed(e)
    }
}

fn run<T>(
    conn: &Connection,
    sql: &str,
    binds: &[Bind],
    map: impl Fn(&dyn Columns) -> RepoResult<T>,
) -> Result<Vec<T>, Stop> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names = NamedRow::names_of(&stmt);
    let mut rows = stmt.query(rusqlite::params_from_iter(binds))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(&NamedRow::new(row, &names))?);
    }
    Ok(out)
}

impl ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Bind::Text(s) => ToSqlOutput::Borrowed(s.as_str().into()),
            Bind::OptText(Some(s)) => ToSqlOutput::Borrowed(s.as_str().into()),
            Bind::OptText(None) => ToSqlOutput::Owned(Value::Null),
            Bind::Int(n) | Bind::OptInt(Some(n)) => ToSqlOutput::Owned(Value::Integer(*n)),
            Bind::OptInt(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// As `crate::error::repo_error` for sqlx: a busy, locked or full database is unavailable
/// for now (503); anything else is an error of its own. Reads break no rule of the data.
pub(crate) fn repo_error(err: rusqlite::Error) -> RepoError {
    use rusqlite::ErrorCode as C;
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, C::DatabaseBusy | C::DatabaseLocked | C::DiskFull) =>
        {
            RepoError::Unavailable(err.into())
        }
        _ => RepoError::Other(err.into()),
    }
}
