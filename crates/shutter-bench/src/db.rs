//! The server's database for a run (`--database`): by default the SQLite file in the
//! temporary data directory; with `--database postgres://…` a scratch database the harness
//! creates on that PostgreSQL server (`shutter_bench_<pid>`), points the server at
//! (`SHUTTER_DATABASE__URL`) and drops at the end.
//!
//! [`Watcher`] is the harness's own read-only view of it, for the few things it observes in
//! the database (the job queue, feed entries, like rows); its queries are written once, with
//! `$1`-style parameters, which both drivers take.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::encode::Encode;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ColumnIndex, Connection, Decode, Executor, IntoArguments, PgConnection, Type};

/// Where the server keeps its data in this run.
pub enum Database {
    /// `<data_dir>/shutter.db`, the server's default.
    Sqlite { path: PathBuf },
    /// A scratch database on a PostgreSQL server.
    Postgres(Scratch),
}

/// A database the harness created for the run.
pub struct Scratch {
    /// The URL given with `--database` (its database is where `CREATE`/`DROP DATABASE` run).
    admin_url: String,
    /// The same server and credentials, the scratch database.
    pub url: String,
    pub name: String,
    /// `host:port`, for messages (never the credentials).
    pub server: String,
    /// `SHOW server_version`.
    pub version: String,
}

impl Database {
    /// SQLite in `data_dir` when `url` is `None`; otherwise creates the scratch database on
    /// the PostgreSQL server `url` names.
    pub async fn prepare(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Database::Sqlite {
                path: data_dir.join("shutter.db"),
            });
        };
        let mut parsed = reqwest::Url::parse(url).context("--database: not a URL")?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            bail!("--database: only postgres:// (or postgresql://) URLs are supported");
        }
        let server = format!(
            "{}:{}",
            parsed.host_str().unwrap_or("localhost"),
            parsed.port().unwrap_or(5432)
        );
        let name = format!("shutter_bench_{}", std::process::id());
        parsed.set_path(&format!("/{name}"));
        let mut admin = PgConnection::connect(url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server}"))?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating the scratch database {name} on {server}"))?;
        admin.close().await?;
        Ok(Database::Postgres(Scratch {
            admin_url: url.to_owned(),
            url: parsed.to_string(),
            name,
            server,
            version,
        }))
    }

    /// For results.json's `machine.database`.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite { .. } => "sqlite (the data directory)".to_owned(),
            Database::Postgres(s) => format!(
                "postgresql {} on {} (scratch database {})",
                s.version, s.server, s.name
            ),
        }
    }

    /// The server's environment for this database (none for SQLite: its default).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Database::Sqlite { .. } => Vec::new(),
            Database::Postgres(s) => vec![("SHUTTER_DATABASE__URL", s.url.clone())],
        }
    }

    /// A small read-only pool on the server's database.
    pub async fn watcher(&self) -> anyhow::Result<Watcher> {
        Ok(match self {
            Database::Sqlite { path } => Watcher::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(
                        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                            .read_only(true),
                    )
                    .await?,
            ),
            Database::Postgres(s) => Watcher::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(
                        PgConnectOptions::from_str(&s.url)?
                            .options([("default_transaction_read_only", "on")]),
                    )
                    .await?,
            ),
        })
    }

    /// Drops the scratch database (nothing to do for SQLite: the data directory goes).
    pub async fn remove(&self) -> anyhow::Result<()> {
        let Database::Postgres(s) = self else {
            return Ok(());
        };
        let mut admin = PgConnection::connect(&s.admin_url).await?;
        // FORCE (PostgreSQL 13+) ends what the server left connected, e.g. after a failure.
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            s.name
        ))
        .execute(&mut admin)
        .await
        .with_context(|| format!("dropping the scratch database {}", s.name))?;
        admin.close().await?;
        Ok(())
    }
}

/// The harness's read-only view of the server's database.
pub enum Watcher {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Watcher {
    /// A query answering one integer (a `COUNT(*)`), with text parameters `$1`, `$2`, ….
    pub async fn count(&self, sql: &str, params: &[&str]) -> anyhow::Result<i64> {
        match self {
            Watcher::Sqlite(pool) => count_in(pool, sql, params).await,
            Watcher::Postgres(pool) => count_in(pool, sql, params).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Watcher::Sqlite(pool) => pool.close().await,
            Watcher::Postgres(pool) => pool.close().await,
        }
    }
}

async fn count_in<'q, DB>(
    pool: &sqlx::Pool<DB>,
    sql: &'q str,
    params: &[&'q str],
) -> anyhow::Result<i64>
where
    DB: sqlx::Database,
    for<'a> DB::Arguments<'a>: IntoArguments<'a, DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut query = sqlx::query_scalar::<DB, i64>(sql);
    for p in params {
        query = query.bind(*p);
    }
    query
        .fetch_one(pool)
        .await
        .with_context(|| format!("reading the server's database: {sql}"))
}
