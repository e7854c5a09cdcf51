//! Reads of the embedded database on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to it
//! and every row back through channels: two thread switches or more per statement, which
//! cost more than the read itself when the pages are in memory (the read mix spent 41 % of
//! the server's time in the kernel switching threads). The hot reads (see
//! `SqliteRepo::read`) run here instead, on connections of this reader, inside the task that
//! asks. A read of the embedded database is an indexed lookup of microseconds and never waits
//! for the writer (WAL), so it is CPU work like any other; SQLite's busy handler can only wait
//! in the rare moments a checkpoint resets the WAL.
//!
//! No connection is held across an `.await`, so there are at most as many in use as threads
//! running reads at once; idle ones are kept for the next read, with their prepared statements.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags, ToSql};
use shutter_app::ports::{RepoError, RepoResult};

use crate::rows::{Bind, Columns};

/// Idle connections kept beyond this many are closed.
const MAX_IDLE: usize = 16;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Connections to one SQLite file for reads on the calling thread.
#[derive(Debug)]
pub(crate) struct InlineReader {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// A reader of the database file at `path` (which must exist: the pool's first
    /// connection creates it). One connection is opened at once, so a file that cannot be
    /// read fails here.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Self> {
        let reader = InlineReader {
            path: path.to_path_buf(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        };
        let conn = reader.connect()?;
        reader.give_back(conn);
        Ok(reader)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        // Read-write without create: a WAL reader writes its read marks into the `-shm`
        // file; `query_only` keeps the connection from changing anything.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        // As the sqlx readers: map the file rather than copy each missed page.
        conn.pragma_update(None, "mmap_size", 268_435_456)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
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

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs `sql` with `binds` and maps every row (one statement, one snapshot).
    pub(crate) fn fetch<T>(
        &self,
        sql: &str,
        binds: &[Bind],
        map: impl Fn(&dyn Columns) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        let conn = self.take().map_err(repo_error)?;
        let result = run(&conn, sql, binds, map);
        // A connection whose statement failed is closed rather than reused.
        if result.is_ok() {
            self.give_back(conn);
        }
        result
    }
}

fn run<T>(
    conn: &Connection,
    sql: &str,
    binds: &[Bind],
    map: impl Fn(&dyn Columns) -> RepoResult<T>,
) -> RepoResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(repo_error)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(binds))
        .map_err(repo_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(repo_error)? {
        out.push(map(row)?);
    }
    Ok(out)
}

impl ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Bind::Text(s) => ToSqlOutput::Borrowed(s.as_str().into()),
            Bind::OptText(Some(s)) => ToSqlOutput::Borrowed(s.as_str().into()),
            Bind::OptText(None) => ToSqlOutput::Owned(Value::Null),
            Bind::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
        })
    }
}

/// As `crate::error::repo_error` for sqlx: a busy, locked or full database is unavailable
/// for now (503); anything else is an error of its own. Reads break no rule of the data.
pub(crate) fn repo_error(err: rusqlite::Error) -> RepoError {
    use rusqlite::ErrorCode as C;
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                C::DatabaseBusy | C::DatabaseLocked | C::DiskFull | C::CannotOpen
            ) =>
        {
            RepoError::Unavailable(err.into())
        }
        _ => RepoError::Other(err.into()),
    }
}
