//! Fresh databases for the scenarios: a temp-file SQLite, or a new PostgreSQL database per
//! test (created over the admin URL and dropped afterwards) so tests can run in parallel.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};

use futures::FutureExt;
use shutter_app::ports::{FileRepo, JobQueue, MediaRepo, Repo, SocialRepo};
use shutter_core::Id;
use shutter_store::{Database, DatabasePool};
use sqlx::{Connection, Executor, PgConnection};

use crate::database_url::with_database;

const POSTGRES_URL_VAR: &str = "SHUTTER_TEST_POSTGRES_URL";

/// Enough connections for the racing scenarios to really race.
const POOL_SIZE: u32 = 8;

/// One backend under test.
pub struct TestDb {
    db: Database,
    /// Where `db` is, for a second pool on the same database.
    url: String,
    repo: Arc<dyn Repo>,
    files: Arc<dyn FileRepo>,
    jobs: Arc<dyn JobQueue>,
    media: Arc<dyn MediaRepo>,
    social: Arc<dyn SocialRepo>,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The directory (and the database in it) goes when this drops.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("shutter.db").display());
        let db = shutter_store::open(&url, POOL_SIZE)
            .await
            .expect("SQLite opens");
        db.migrate().await.expect("SQLite migrations run");
        TestDb::new(db, url, Cleanup::Sqlite(dir))
    }

    /// `None` (with a note on stderr) when PostgreSQL is not configured; a panic when it is
    /// configured but cannot be used, so a broken CI service never passes silently.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                // Written past libtest's capture (which only sees `eprintln!`), once per run,
                // so the log of a passing run still says what did not run.
                static NOTICE: Once = Once::new();
                NOTICE.call_once(|| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{POSTGRES_URL_VAR} not set: PostgreSQL conformance not run"
                    );
                });
                return None;
            }
        };
        let name = format!("shutter_t_{}", Id::new().as_uuid().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
        });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let db = shutter_store::open(&url, POOL_SIZE)
            .await
            .unwrap_or_else(|e| panic!("cannot open the test database {name}: {e:#}"));
        db.migrate().await.expect("PostgreSQL migrations run");
        Some(TestDb::new(db, url, Cleanup::Postgres { admin_url, name }))
    }

    fn new(db: Database, url: String, cleanup: Cleanup) -> TestDb {
        let repo = db.repo();
        let files = db.file_repo();
        let jobs = db.job_queue();
        let media = db.media_repo();
        let social = db.social_repo();
        TestDb {
            db,
            url,
            repo,
            files,
            jobs,
            media,
            social,
            cleanup,
        }
    }

    /// Another pool on the same database, as a second process would have. The caller closes
    /// it (the database is dropped with `FORCE` anyway).
    pub async fn second_pool(&self) -> Database {
        shutter_store::open(&self.url, POOL_SIZE)
            .await
            .expect("a second pool opens")
    }

    pub fn repo(&self) -> &dyn Repo {
        self.repo.as_ref()
    }

    pub fn files(&self) -> &dyn FileRepo {
        self.files.as_ref()
    }

    pub fn jobs(&self) -> &dyn JobQueue {
        self.jobs.as_ref()
    }

    pub fn media(&self) -> &dyn MediaRepo {
        self.media.as_ref()
    }

    pub fn social(&self) -> &dyn SocialRepo {
        self.social.as_ref()
    }

    /// The social repo, to hand to spawned tasks.
    pub fn shared_social(&self) -> Arc<dyn SocialRepo> {
        Arc::clone(&self.social)
    }

    /// The media repo, to hand to spawned tasks.
    pub fn shared_media(&self) -> Arc<dyn MediaRepo> {
        Arc::clone(&self.media)
    }

    /// The job queue, to hand to spawned tasks.
    pub fn shared_jobs(&self) -> Arc<dyn JobQueue> {
        Arc::clone(&self.jobs)
    }

    /// Runs statements written for both dialects (literal values only), for the rows no
    /// port writes yet (likes, follows).
    pub async fn exec(&self, sql: &str) {
        let done = match self.db.pool() {
            DatabasePool::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            DatabasePool::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The single integer `sql` selects.
    pub async fn count(&self, sql: &str) -> i64 {
        let n = match self.db.pool() {
            DatabasePool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            DatabasePool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        };
        n.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs a scenario, then drops the database whatever happened, then passes a panic on.
    pub async fn run(&self, scenario: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(scenario).catch_unwind().await;
        self.db.close().await;
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // Best effort: a database left behind only costs disk space.
            if let Ok(mut admin) = PgConnection::connect(admin_url).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
                let _ = admin.close().await;
            }
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
