//! The database behind each test's data directory.
//!
//! By default the server keeps its SQLite file in the data directory. With
//! `SHUTTER_TEST_API_DATABASE=postgres` every data directory made by [`data_dir`] gets its own
//! fresh PostgreSQL database instead, created on the server `SHUTTER_TEST_POSTGRES_URL` points
//! at and dropped (best effort) with the directory, so tests stay independent and parallel.
//! Databases an earlier run left behind are dropped once they are an hour old. When PostgreSQL
//! is asked for and cannot be used, the test fails; it never falls back to SQLite.
//!
//! The in-process server ([`crate::helpers::start`]) and the `shutter` binary
//! ([`crate::helpers::shutter_command`]) both find the database of a data directory here.
//!
//! SQLite-only tests (they use [`sqlite_data_dir`] or [`crate::helpers::spawn_sqlite_app`] and
//! run on SQLite whatever is asked for), because they read and rewrite the server's job rows
//! directly with SQLite SQL and types (`photo_helpers::database`), to see and steer a job's
//! state that no API shows:
//! - `photo_jobs::a_photo_job_killed_mid_way_runs_again_and_publishes_exactly_once`
//! - `photo_jobs::a_job_that_keeps_failing_is_dead_lettered_and_retried_with_the_cli`
//! - `photo_jobs::premium_photos_are_processed_with_priority`
//! - `photo_jobs::metrics_report_the_job_queue_and_its_outcomes`
//!
//! and `faults::a_full_disk_under_the_database_refuses_writes_cleanly_and_recovers`, whose
//! point is the SQLite database on the full disk (it names that database itself).

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shutter_core::Id;
use sqlx::{Connection, Executor, PgConnection, Row};
use tempfile::TempDir;

#[path = "../../../shutter-store/tests/conformance/database_url.rs"]
mod database_url;
use database_url::with_database;

/// Which database the API tests run on: `postgres`, or `sqlite` (the default).
pub const BACKEND_VAR: &str = "SHUTTER_TEST_API_DATABASE";
/// The PostgreSQL server (any database on it) the per-test databases are created on.
pub const POSTGRES_URL_VAR: &str = "SHUTTER_TEST_POSTGRES_URL";

/// Every per-test database is named `shutter_api_<unix seconds>_<random>`.
const PREFIX: &str = "shutter_api_";
/// Leftovers of earlier runs older than this are dropped.
const LEFTOVER_AGE_SECS: i64 = 3600;

/// The database URL of each live data directory (`None`: the SQLite file inside it).
static DATABASES: Mutex<Option<HashMap<PathBuf, Option<String>>>> = Mutex::new(None);

/// Whether the run asks for PostgreSQL; an unknown value is a mistake, not SQLite.
pub fn postgres_requested() -> bool {
    match std::env::var(BACKEND_VAR) {
        Ok(v) if v.trim().eq_ignore_ascii_case("postgres") => true,
        Ok(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("sqlite") => false,
        Ok(v) => panic!("{BACKEND_VAR}={v:?}: expected `postgres` or `sqlite`"),
        Err(_) => false,
    }
}

/// A test's data directory and, on PostgreSQL, the database that goes with it.
pub struct TestDataDir {
    dir: TempDir,
    database: Option<PgDatabase>,
}

impl TestDataDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Deref for TestDataDir {
    type Target = TempDir;
    fn deref(&self) -> &TempDir {
        &self.dir
    }
}

/// A directory kept alive beside a server whose data lives elsewhere; it has no database.
impl From<TempDir> for TestDataDir {
    fn from(dir: TempDir) -> Self {
        TestDataDir {
            dir,
            database: None,
        }
    }
}

impl Drop for TestDataDir {
    fn drop(&mut self) {
        if let Some(map) = DATABASES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.remove(self.dir.path());
        }
        if let Some(database) = self.database.take() {
            database.drop_now();
        }
    }
}

/// A fresh data directory on the backend the run asks for.
pub async fn data_dir() -> TestDataDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = if postgres_requested() {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    register(dir.path(), database.as_ref().map(|d| d.url.clone()));
    TestDataDir { dir, database }
}

/// A fresh data directory whose server keeps its SQLite file in it, whatever the run asks for
/// (for the tests listed at the top of this file).
pub fn sqlite_data_dir() -> TestDataDir {
    let dir = tempfile::tempdir().expect("temp dir");
    register(dir.path(), None);
    TestDataDir {
        dir,
        database: None,
    }
}

fn register(dir: &Path, url: Option<String>) {
    DATABASES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(dir.to_path_buf(), url);
}

/// The database URL for a server whose data directory is `path` (or below one made here):
/// `None` for the SQLite file in it. On PostgreSQL a directory not made by [`data_dir`] or
/// [`sqlite_data_dir`] is a test bug, reported as such.
pub fn database_url_for(path: &Path) -> Option<String> {
    let guard = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    let found = guard
        .as_ref()
        .and_then(|map| path.ancestors().find_map(|dir| map.get(dir).cloned()));
    match found {
        Some(url) => url,
        None if postgres_requested() => panic!(
            "{} was not made by backend::data_dir(); on PostgreSQL it has no database",
            path.display()
        ),
        None => None,
    }
}

/// One per-test PostgreSQL database.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!("{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR} (the server to use)"),
        };
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} cannot be reached: {e}"));
        drop_leftovers(&mut admin).await;
        let name = format!(
            "{PREFIX}{}_{}",
            crate::helpers::unix_now(),
            Id::new().as_uuid().simple()
        );
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// Drops the database now, from a thread of its own (this runs in `Drop`, maybe inside a
    /// runtime); `FORCE` ends the connections the stopped server may still hold.
    fn drop_now(self) {
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                // Best effort: a database left behind is dropped by a later run.
                if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
                    let _ = admin
                        .execute(
                            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str(),
                        )
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Drops the per-test databases of earlier runs that are over an hour old (once per run).
async fn drop_leftovers(admin: &mut PgConnection) {
    static DONE: Mutex<bool> = Mutex::new(false);
    {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return;
        }
        *done = true;
    }
    let rows = sqlx::query("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
        .bind(PREFIX)
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_else(|e| panic!("cannot list the databases: {e}"));
    let now = crate::helpers::unix_now();
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<i64>().ok());
        if created.is_some_and(|secs| now - secs > LEFTOVER_AGE_SECS) {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}
