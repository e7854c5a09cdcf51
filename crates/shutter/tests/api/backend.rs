//! The database and the blob store behind each test's data directory.
//!
//! By default the server keeps its SQLite file in the data directory. With
//! `SHUTTER_TEST_API_DATABASE=postgres` every data directory made by [`data_dir`] gets its own
//! fresh PostgreSQL database instead, created on the server `SHUTTER_TEST_POSTGRES_URL` points
//! at and dropped (best effort) with the directory, so tests stay independent and parallel.
//! Databases an earlier run left behind are dropped once they are an hour old. When PostgreSQL
//! is asked for and cannot be used, the test fails; it never falls back to SQLite.
//!
//! Likewise the server keeps its blobs under the data directory by default, and with
//! `SHUTTER_TEST_API_STORAGE=s3` every data directory gets its own fresh bucket (`api-<uuid>`)
//! on the S3 server `SHUTTER_TEST_S3_ENDPOINT` names (with `SHUTTER_TEST_S3_ACCESS_KEY` and
//! `SHUTTER_TEST_S3_SECRET_KEY`; `scripts/s3-server.sh` starts one), path-style, region
//! `us-east-1`. One bucket per data directory, not one per run: each server's sweeper deletes
//! the objects no row of *its* database owns. The bucket's objects are deleted (best effort)
//! with the directory. When S3 is asked for and cannot be used, the test fails; it never
//! falls back to the local directory.
//!
//! The in-process server (the API suite's `helpers::start`, the CLI suite's `start_server`) and
//! the `shutter` binary (`helpers::shutter_command`) all find the database and the bucket of a data
//! directory here, and [`blob_store`] opens a data directory's store for tests that check
//! what is stored, whichever store it is.
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
//!
//! Local-storage-only tests (they use [`local_storage_data_dir`], or [`data_dir_on`] with
//! [`Storage::Local`], and keep their blobs in a local directory whatever is asked for),
//! because they plant a storage fault in that directory, which no S3 server lets a client do:
//! - `faults::a_full_data_disk_refuses_uploads_cleanly_and_loses_nothing` and
//!   `faults::a_full_disk_under_the_database_refuses_writes_cleanly_and_recovers`: the blob
//!   directory is on a small tmpfs that fills up;
//! - `photo_jobs::a_job_that_keeps_failing_is_dead_lettered_and_retried_with_the_cli` and
//!   `photo_jobs::metrics_report_the_job_queue_and_its_outcomes`: a directory where a photo's
//!   `thumb` variant must go makes storing that variant fail until it is removed.
//!
//! and because they test what Shutter does only when the bytes go through it, which on S3
//! they do not (the ticket is the bucket's, private downloads redirect to it; what S3 does
//! instead is tested in `s3_direct.rs`, the S3 store's own tests and `s3_storage.rs`):
//! - `uploads_put.rs`, all of it: Shutter's own presigned `PUT` (its signature, expiry, size
//!   limit while streaming, conflicts, a body that breaks off);
//! - `crash_points::a_put_*`, `crash_points::an_upload_abandoned_after_a_crash_at_the_commit_*`
//!   and `crash_points::a_worker_starting_beside_a_running_upload_leaves_it_alone`, and
//!   `upload_process::a_1_gib_put_streams_to_disk_with_flat_memory` and
//!   `upload_process::a_put_cut_by_a_server_kill_is_never_ready_with_wrong_bytes`: a server
//!   killed or measured while a `PUT` streams through it;
//! - `upload_events::sse_streams_progress_*` and `upload_events::websocket_streams_progress_*`:
//!   progress of a `PUT` streaming through Shutter (tus progress is tested on every store);
//! - `memory::an_image_padded_to_hundreds_of_megabytes_*`: its body streams without a length,
//!   which a presigned `PUT` (length signed) refuses;
//! - `downloads.rs`' tests of the headers Shutter serves a private file with (on S3 the bucket
//!   serves them), and `edge_cases::ranges_never_overflow_*` (Shutter's `Range` parsing);
//! - `files_api::listing_files_filters_and_pages_newest_first` and
//!   `files_api::tier_limits_are_checked_on_creation_with_the_limit_named`: they fail an upload
//!   by sending fewer bytes than declared, which a presigned `PUT` with its length signed
//!   cannot send (on S3, `s3_direct.rs` fails uploads by checksum, content and size instead);
//! - `authorization::every_operation_answers_each_caller_as_spec_says` (it tampers with
//!   Shutter's upload URLs) and `files_api::creating_a_file_returns_it_pending_with_a_presigned_ticket`
//!   (it checks Shutter's ticket URL).

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shutter_app::ports::BlobStore;
use shutter_core::config::{S3StorageConfig, StorageBackend};
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
/// Which blob store the API tests run on: `s3`, or `local` (the default).
pub const STORAGE_VAR: &str = "SHUTTER_TEST_API_STORAGE";
/// The S3 server the per-test buckets are created on, and the credentials to use there.
pub const S3_ENDPOINT_VAR: &str = "SHUTTER_TEST_S3_ENDPOINT";
pub const S3_ACCESS_KEY_VAR: &str = "SHUTTER_TEST_S3_ACCESS_KEY";
pub const S3_SECRET_KEY_VAR: &str = "SHUTTER_TEST_S3_SECRET_KEY";

/// Every per-test database is named `shutter_api_<unix seconds>_<random>`.
const PREFIX: &str = "shutter_api_";
/// Leftovers of earlier runs older than this are dropped.
const LEFTOVER_AGE_SECS: i64 = 3600;

/// Where the servers of one live data directory keep their data.
#[derive(Clone)]
struct Backends {
    /// The database URL (`None`: the SQLite file inside the directory).
    database_url: Option<String>,
    /// The bucket (`None`: the blob directory inside the data directory).
    s3: Option<S3StorageConfig>,
}

/// The backends of each live data directory.
static DATA_DIRS: Mutex<Option<HashMap<PathBuf, Backends>>> = Mutex::new(None);

/// Whether the run asks for PostgreSQL; an unknown value is a mistake, not SQLite.
pub fn postgres_requested() -> bool {
    match std::env::var(BACKEND_VAR) {
        Ok(v) if v.trim().eq_ignore_ascii_case("postgres") => true,
        Ok(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("sqlite") => false,
        Ok(v) => panic!("{BACKEND_VAR}={v:?}: expected `postgres` or `sqlite`"),
        Err(_) => false,
    }
}

/// Whether the run asks for S3; an unknown value is a mistake, not local storage.
pub fn s3_requested() -> bool {
    match std::env::var(STORAGE_VAR) {
        Ok(v) if v.trim().eq_ignore_ascii_case("s3") => true,
        Ok(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("local") => false,
        Ok(v) => panic!("{STORAGE_VAR}={v:?}: expected `s3` or `local`"),
        Err(_) => false,
    }
}

/// The database a data directory is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    /// The one the run asks for ([`BACKEND_VAR`]).
    Requested,
    /// SQLite, whatever the run asks for (the tests listed at the top of this file).
    Sqlite,
    /// A PostgreSQL database of its own, whatever the run asks for (`multi_node.rs`: nodes
    /// that share one database).
    Postgres,
}

/// The blob store a data directory is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The one the run asks for ([`STORAGE_VAR`]).
    Requested,
    /// The local directory, whatever the run asks for (the tests listed at the top of this file).
    Local,
    /// A bucket of its own on the run's S3 server, whatever the run asks for (the tests of
    /// what only S3 does: `s3_direct.rs`, and memory on S3).
    S3,
}

/// A test's data directory and, on PostgreSQL, the database that goes with it; on S3, the
/// bucket.
pub struct TestDataDir {
    dir: TempDir,
    database: Option<PgDatabase>,
    bucket: Option<S3StorageConfig>,
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
            bucket: None,
        }
    }
}

impl Drop for TestDataDir {
    fn drop(&mut self) {
        if let Some(map) = DATA_DIRS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.remove(self.dir.path());
        }
        let database = self.database.take();
        let bucket = self.bucket.take();
        if database.is_none() && bucket.is_none() {
            return;
        }
        // From a thread of its own: this runs in `Drop`, maybe inside a runtime.
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Some(bucket) = bucket {
                    empty_bucket(&bucket).await;
                }
                if let Some(database) = database {
                    database.drop_now().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// The configuration every test's server starts from: a fresh data directory, port 0, no
/// rate limits.
pub fn test_config(data_dir: &Path) -> shutter_core::config::Config {
    let mut config = shutter_core::config::Config {
        data_dir: data_dir.to_path_buf(),
        ..shutter_core::config::Config::default()
    };
    config.server.listen = "127.0.0.1:0".into();
    config.server.public_url = None;
    config.rate_limits.enabled = false;
    // The machine is small and shared; one background worker is plenty for these tests.
    config.jobs.workers = Some(1);
    config
}

/// Seconds since 1970.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A fresh data directory on the database and the blob store the run asks for.
pub async fn data_dir() -> TestDataDir {
    data_dir_on(Database::Requested, Storage::Requested).await
}

/// A fresh data directory whose server keeps its SQLite file in it, whatever the run asks for
/// (for the tests listed at the top of this file); its blobs are where the run asks for.
pub async fn sqlite_data_dir() -> TestDataDir {
    data_dir_on(Database::Sqlite, Storage::Requested).await
}

/// A fresh data directory whose server keeps its blobs in a local directory, whatever the run
/// asks for (for the tests listed at the top of this file); its database is the one asked for.
pub async fn local_storage_data_dir() -> TestDataDir {
    data_dir_on(Database::Requested, Storage::Local).await
}

/// A fresh data directory on this database and blob store.
pub async fn data_dir_on(database: Database, storage: Storage) -> TestDataDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = if database == Database::Postgres
        || (database == Database::Requested && postgres_requested())
    {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let bucket = match storage {
        Storage::S3 => Some(create_bucket().await),
        Storage::Requested if s3_requested() => Some(create_bucket().await),
        Storage::Requested | Storage::Local => None,
    };
    DATA_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(
            dir.path().to_path_buf(),
            Backends {
                database_url: database.as_ref().map(|d| d.url.clone()),
                s3: bucket.clone(),
            },
        );
    TestDataDir {
        dir,
        database,
        bucket,
    }
}

/// The backends of the data directory `path` is (or is below), if it was made here.
fn backends_of(path: &Path) -> Option<Backends> {
    let guard = DATA_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .and_then(|map| path.ancestors().find_map(|dir| map.get(dir).cloned()))
}

/// The database URL for a server whose data directory is `path` (or below one made here):
/// `None` for the SQLite file in it. On PostgreSQL a directory not made by [`data_dir`] or
/// [`sqlite_data_dir`] is a test bug, reported as such.
pub fn database_url_for(path: &Path) -> Option<String> {
    match backends_of(path) {
        Some(backends) => backends.database_url,
        None if postgres_requested() => panic!(
            "{} was not made by backend::data_dir(); on PostgreSQL it has no database",
            path.display()
        ),
        None => None,
    }
}

/// The bucket for a server whose data directory is `path` (or below one made here): `None`
/// for the blob directory in it. On S3 a directory not made by [`data_dir`] or its siblings
/// is a test bug, reported as such.
pub fn s3_storage_for(path: &Path) -> Option<S3StorageConfig> {
    match backends_of(path) {
        Some(backends) => backends.s3,
        None if s3_requested() => panic!(
            "{} was not made by backend::data_dir(); on S3 it has no bucket",
            path.display()
        ),
        None => None,
    }
}

/// Points `config` at the blob store of its data directory: the bucket when the directory
/// has one, unless the configuration names a local blob directory of its own.
pub fn configure_storage(config: &mut shutter_core::config::Config) {
    if config.storage.backend != StorageBackend::Local || config.storage.local.path.is_some() {
        return;
    }
    if let Some(s3) = s3_storage_for(&config.data_dir) {
        config.storage.backend = StorageBackend::S3;
        config.storage.s3 = s3;
    }
}

/// The environment that points a `shutter` process for data directory `path` at its bucket
/// (nothing for the blob directory in it).
pub fn storage_env_for(path: &Path) -> Vec<(&'static str, String)> {
    let Some(s3) = s3_storage_for(path) else {
        return Vec::new();
    };
    let mut env = vec![("SHUTTER_STORAGE__BACKEND", "s3".to_owned())];
    let keys = [
        ("SHUTTER_STORAGE__S3__ENDPOINT", s3.endpoint),
        ("SHUTTER_STORAGE__S3__BUCKET", s3.bucket),
        ("SHUTTER_STORAGE__S3__REGION", s3.region),
        ("SHUTTER_STORAGE__S3__ACCESS_KEY", s3.access_key),
        ("SHUTTER_STORAGE__S3__SECRET_KEY", s3.secret_key),
    ];
    env.extend(keys.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    env.push(("SHUTTER_STORAGE__S3__PATH_STYLE", s3.path_style.to_string()));
    env
}

/// The blob store of the data directory `path` (the bucket, or the blob directory in it),
/// opened the way the server opens it, to check what is stored whichever store it is.
pub fn blob_store(path: &Path) -> std::sync::Arc<dyn BlobStore> {
    let mut config = test_config(path);
    configure_storage(&mut config);
    shutter::startup::open_blob_store(&config).expect("the data directory's blob store opens")
}

/// A fresh bucket on the S3 server the run names.
async fn create_bucket() -> S3StorageConfig {
    let var = |name: &str| match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{STORAGE_VAR}=s3 needs {name} (`eval \"$(scripts/s3-server.sh start)\"` sets it)"
        ),
    };
    let config = S3StorageConfig {
        endpoint: Some(var(S3_ENDPOINT_VAR)),
        bucket: Some(format!("api-{}", Id::new().as_uuid().simple())),
        region: Some("us-east-1".into()),
        access_key: Some(var(S3_ACCESS_KEY_VAR)),
        secret_key: Some(var(S3_SECRET_KEY_VAR)),
        session_token: None,
        path_style: true,
    };
    let store = shutter_blob::S3BlobStore::new(&config)
        .unwrap_or_else(|e| panic!("the S3 store does not configure: {e:#}"));
    store.create_bucket().await.unwrap_or_else(|e| {
        panic!(
            "cannot create bucket {} on {}: {e:#}",
            store.bucket(),
            config.endpoint.as_deref().unwrap_or_default()
        )
    });
    config
}

/// Deletes every object of a test's bucket (best effort: the S3 server's data is temporary).
async fn empty_bucket(config: &S3StorageConfig) {
    let Ok(store) = shutter_blob::S3BlobStore::new(config) else {
        return;
    };
    let Ok(ids) = store.list_file_ids().await else {
        return;
    };
    for (id, _) in ids {
        let key = format!("files/{id}");
        let _ = store.discard_partial(&key).await;
        let _ = store.delete(&key).await;
    }
}

/// A fresh PostgreSQL database beside a test's own (a stand-in for a read replica), on the
/// run's server; [`ScratchDatabase::drop_now`] drops it (a later run drops one left behind).
pub struct ScratchDatabase(PgDatabase);

impl ScratchDatabase {
    pub async fn create() -> ScratchDatabase {
        ScratchDatabase(PgDatabase::create().await)
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// Drops the database, ending every connection to it.
    pub async fn drop_now(self) {
        self.0.drop_now().await;
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
        let name = format!("{PREFIX}{}_{}", unix_now(), Id::new().as_uuid().simple());
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

    /// Drops the database now; `FORCE` ends the connections the stopped server may still
    /// hold. Best effort: a database left behind is dropped by a later run.
    async fn drop_now(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
            let _ = admin.close().await;
        }
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
    let now = unix_now();
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
