//! Building and running the server: the adapters named by the configuration, the use cases
//! over them, and the HTTP server on its socket.

use std::sync::Arc;

use anyhow::Context;
use shutter_app::events::InProcessEventBus;
use shutter_app::ports::{BlobStore, Repo, SystemClock};
use shutter_app::ports::{EventBus, EventRelay, OptionalBackend};
use shutter_app::rate_limit::InProcessRateLimiter;
use shutter_app::relay::RelayedEventBus;
use shutter_app::{Deps, Shutter};
use shutter_core::config::{Config, StorageBackend};
use shutter_redis::{Redis, RedisEventRelay, RedisRateLimiter};
use tokio::net::TcpListener;

/// Opens the metadata store named by the configuration and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<shutter_store::Database> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let mut db = shutter_store::open(&config.database_url(), config.database.max_connections)
        .await
        .context("opening the database")?;
    if let Some(url) = &config.database.read_url {
        db.attach_read_replica(url, config.database.max_connections)
            .context("database.read_url")?;
    }
    db.migrate().await.context("applying database migrations")?;
    Ok(db)
}

/// The metadata `Repo` alone (for commands that need nothing else).
pub async fn open_repo(config: &Config) -> anyhow::Result<Arc<dyn Repo>> {
    Ok(open_database(config).await?.repo())
}

/// The object store the configuration names.
pub fn open_blob_store(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match config.storage.backend {
        StorageBackend::Local => Arc::new(
            shutter_blob::LocalBlobStore::new(local_blob_root(config))
                .context("opening the blob directory")?,
        ),
        StorageBackend::S3 => Arc::new(
            shutter_blob::S3BlobStore::new(&config.storage.s3)
                .context("configuring the S3 bucket")?,
        ),
    })
}

/// Checks that the configured storage can be used (`shutter check`): on S3 the bucket answers
/// and takes a write, locally the directory does. Returns what was checked, for the report;
/// the error names the storage and the cause.
pub async fn check_storage(config: &Config) -> anyhow::Result<String> {
    let (blobs, what): (Arc<dyn BlobStore>, String) = match config.storage.backend {
        StorageBackend::Local => {
            let root = local_blob_root(config);
            let store = shutter_blob::LocalBlobStore::new(root.clone())
                .with_context(|| format!("storage: local directory {}", root.display()))?;
            (
                Arc::new(store),
                format!("local directory {}", root.display()),
            )
        }
        StorageBackend::S3 => {
            let store = shutter_blob::S3BlobStore::new(&config.storage.s3)
                .context("storage: configuring the S3 bucket")?;
            let what = format!("s3 bucket {} at {}", store.bucket(), store.endpoint());
            (Arc::new(store), what)
        }
    };
    blobs
        .ping()
        .await
        .map_err(anyhow::Error::new)
        .with_context(|| format!("storage: {what} cannot be used"))?;
    let answers = match config.storage.backend {
        StorageBackend::Local => "writable",
        StorageBackend::S3 => "reachable, writable",
    };
    Ok(format!("{what} ({answers})"))
}

/// The directory of the local blob store.
fn local_blob_root(config: &Config) -> std::path::PathBuf {
    config
        .storage
        .local
        .path
        .clone()
        .unwrap_or_else(|| config.data_dir.join("blobs"))
}

/// The use cases over the adapters the configuration names.
pub async fn build_app(config: Config) -> anyhow::Result<Arc<Shutter>> {
    let db = open_database(&config).await?;
    let jwt_secret = crate::secrets::load_or_create(&config.secrets_dir(), "jwt.key")?;
    let url_secret = crate::secrets::load_or_create(&config.secrets_dir(), "url_signing.key")?;
    let blobs = open_blob_store(&config)?;
    let redis = match &config.redis.url {
        Some(url) => Some(Redis::connect(url).await.context("redis.url")?),
        None => None,
    };
    let clock = Arc::new(SystemClock);
    Ok(Arc::new(Shutter::new(Deps {
        repo: db.repo(),
        files: db.file_repo(),
        media: db.media_repo(),
        jobs: db.job_queue(),
        social: db.social_repo(),
        blobs,
        events: open_event_bus(&db, redis.as_ref()),
        rate_limiter: match &redis {
            Some(redis) => Arc::new(RedisRateLimiter::new(redis.clone(), clock.clone())),
            None => Arc::new(InProcessRateLimiter::new(clock.clone())),
        },
        clock,
        config: Arc::new(config),
        jwt_secret,
        url_secret,
        optional: redis
            .iter()
            .map(|r| ("redis", Arc::new(r.clone()) as Arc<dyn OptionalBackend>))
            .chain(db.replica_check().map(|r| ("database_replica", r)))
            .collect(),
        writer_locks: db.writer_locks(),
        one_node: db.one_node(),
    })))
}

/// Live events: relayed between nodes through Redis when `redis.url` is set, else through
/// PostgreSQL when the database is PostgreSQL, else kept in this process (SQLite serves one
/// node).
fn open_event_bus(db: &shutter_store::Database, redis: Option<&Redis>) -> Arc<dyn EventBus> {
    let relay: Option<Arc<dyn EventRelay>> = match redis {
        Some(redis) => Some(Arc::new(RedisEventRelay::new(redis.clone()))),
        None => db.event_relay(),
    };
    match relay {
        Some(relay) => Arc::new(RelayedEventBus::new(relay)),
        None => Arc::new(InProcessEventBus::new()),
    }
}

/// Brings buffered like counts up to date every `LIKE_FLUSH`.
fn spawn_like_flusher(app: Arc<Shutter>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(shutter_app::social::LIKE_FLUSH);
        loop {
            tick.tick().await;
            if let Err(e) = app.flush_like_counts().await {
                tracing::warn!(error = %e.detail, "flushing like counts failed; will retry");
            }
        }
    });
}

/// Records queue depth and age in the metrics every few seconds.
fn spawn_queue_metrics(app: Arc<Shutter>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            app.record_queue_metrics().await;
        }
    });
}

/// Runs `jobs.workers` workers until `stop` turns true (none when it is 0: the jobs wait for
/// `shutter worker` processes).
pub fn spawn_workers(
    app: Arc<Shutter>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let count = app.config().jobs.worker_count();
    if count == 0 {
        tracing::info!("no job workers in this process (jobs.workers = 0); `shutter worker` processes run the jobs");
    } else {
        tracing::info!(workers = count, "starting job workers");
    }
    tokio::spawn(app.run_workers(count, stop))
}

/// `shutter worker`: job workers (and the sweeper) without the HTTP server, until SIGTERM.
pub async fn run_worker(config: Config) -> anyhow::Result<()> {
    let shutdown_timeout = config.server.shutdown_timeout.get();
    let app = build_app(config).await?;
    start_sweeper(app.clone(), Node::Worker).await;
    crate::memory::spawn_trimmer();
    spawn_queue_metrics(app.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = spawn_workers(app, stop_rx);
    shutdown_signal().await;
    tracing::info!("shutdown requested; finishing running jobs");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(shutdown_timeout, workers)
        .await
        .is_err()
    {
        tracing::warn!("running jobs did not finish in time; their leases will expire and another worker will take them");
    }
    Ok(())
}

/// What kind of process starts the sweeper.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    /// `shutter serve`: takes uploads.
    Api,
    /// `shutter worker`: runs jobs beside API nodes that may be mid-upload.
    Worker,
}

/// Recovers the uploads a previous run left cut off, then runs the sweeper every
/// `storage.sweep_interval` until the process ends.
async fn start_sweeper(app: Arc<Shutter>, node: Node) {
    let interval = app.config().storage.sweep_interval.get();
    // An API node on SQLite is the only one, so every upload still marked `uploading` at its
    // start was cut off. On PostgreSQL other nodes may be mid-upload, and a worker starts
    // beside a running API node: there only uploads idle for a while are taken to be dead.
    let single_node = node == Node::Api && app.config().database_url().starts_with("sqlite:");
    let idle_ms = if single_node {
        0
    } else {
        shutter_app::uploads::STALLED_AT_START_MS
    };
    match app.recover_stalled_uploads(idle_ms).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "recovered interrupted uploads"),
        Err(e) => tracing::warn!(error = %e.detail, "recovering interrupted uploads failed"),
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.sweep_once().await {
                tracing::warn!(error = %e.detail, "sweeper pass failed");
            }
        }
    });
}

/// A built server, bound to its port but not yet serving.
pub struct Application {
    port: u16,
    listener: TcpListener,
    router: axum::Router,
    app: Arc<Shutter>,
    shutdown_timeout: std::time::Duration,
    header_read_timeout: std::time::Duration,
    idle_timeout: std::time::Duration,
}

impl Application {
    /// Binds the listen address (port 0 picks a free port) and wires everything. When no
    /// public URL is configured it is derived from the bound address.
    pub async fn build(mut config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        if config.server.public_url.is_none() {
            config.server.public_url = Some(format!("http://{addr}"));
        }
        let shutdown_timeout = config.server.shutdown_timeout.get();
        let header_read_timeout = config.server.header_read_timeout.get();
        let idle_timeout = config.server.idle_timeout.get();
        let app = build_app(config).await?;
        let router = shutter_api::router(app.clone(), shutter_api::telemetry::metrics_handle());
        tracing::info!(listen = %addr, "shutter listening");
        Ok(Application {
            port: addr.port(),
            listener,
            router,
            app,
            shutdown_timeout,
            header_read_timeout,
            idle_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves (with in-process job workers and the sweeper) until SIGTERM or SIGINT, then
    /// stops accepting and lets in-flight requests and running jobs finish, for at most
    /// `server.shutdown_timeout`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        start_sweeper(self.app.clone(), Node::Api).await;
        crate::memory::spawn_trimmer();
        spawn_queue_metrics(self.app.clone());
        spawn_like_flusher(self.app.clone());
        let workers = spawn_workers(self.app.clone(), stop_rx.clone());
        let timeouts = crate::serve::Timeouts {
            header_read: self.header_read_timeout,
            idle: self.idle_timeout,
        };
        let server = crate::serve::serve(self.listener, self.router, timeouts, stop_rx.clone());
        let mut server = std::pin::pin!(server);
        tokio::select! {
            result = &mut server => return result.context("serving HTTP"),
            () = shutdown_signal() => {}
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
        let _ = stop_tx.send(true);
        let app = self.app.clone();
        let drained = async {
            let served = server.await;
            let _ = workers.await;
            // Likes counted in this process reach the database before it exits.
            if let Err(e) = app.flush_like_counts().await {
                tracing::warn!(error = %e.detail, "flushing like counts at shutdown failed");
            }
            served
        };
        match tokio::time::timeout(self.shutdown_timeout, drained).await {
            Ok(result) => result.context("serving HTTP")?,
            Err(_) => {
                tracing::warn!("in-flight requests or jobs did not finish in time; stopping anyway")
            }
        }
        tracing::info!("shutter stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
