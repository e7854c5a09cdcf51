//! Shutter's use cases. Each public method of [`Shutter`] is one thing a client can ask for;
//! it checks the rules and talks to the outside only through the ports in [`ports`].
//!
//! **Invariant:** no SQL, no HTTP server types and no image code here; adapters implement
//! the ports in their own crates.

pub mod accounts;
pub mod auth;
pub mod backoff;
mod cache;
pub mod crash;
pub mod error;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod jobs;
pub mod oidc;
pub mod passwords;
pub mod ports;
pub mod posts;
mod processing;
pub mod rate_limit;
pub mod relay;
pub mod signing;
pub mod social;
pub mod transfers;
pub mod uploads;

use std::sync::Arc;

use shutter_core::config::Config;

pub use error::{AppError, AppResult};

use crate::auth::TokenKeys;
use crate::oidc::OidcVerifier;
use crate::ports::{
    BlobStore, Clock, EventBus, FileRepo, JobQueue, MediaRepo, OptionalBackend, RateLimiter, Repo,
    SocialRepo, WriterLocks,
};
use crate::transfers::Transfers;
use crate::uploads::UploadState;

/// What the use cases are built from: the adapters chosen at start-up and the configuration.
pub struct Deps {
    pub repo: Arc<dyn Repo>,
    pub files: Arc<dyn FileRepo>,
    pub media: Arc<dyn MediaRepo>,
    pub jobs: Arc<dyn JobQueue>,
    pub social: Arc<dyn SocialRepo>,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Arc<dyn EventBus>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// The secret that signs Shutter's own access tokens (HS256).
    pub jwt_secret: Vec<u8>,
    /// The secret that signs upload and download URLs (HMAC-SHA256).
    pub url_secret: Vec<u8>,
    /// Backends this node runs without, degraded, when they fail (`redis`).
    pub optional: Vec<(&'static str, Arc<dyn OptionalBackend>)>,
    /// One writer per upload across nodes (PostgreSQL); `None` with one node (SQLite).
    pub writer_locks: Option<Arc<dyn WriterLocks>>,
    /// Whether this process makes every change to the database (SQLite, which one node
    /// alone uses): then published posts are cached in process (see `cache.rs`).
    pub one_node: bool,
}

/// How long readiness waits for an optional backend.
const OPTIONAL_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// One readiness check's outcome.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    /// A required backend's failure makes the node unready; an optional one's, degraded.
    pub required: bool,
    /// The failure's whole chain of causes.
    pub result: Result<(), String>,
}

/// The application: every use case, over the ports it was built with. Cheap to share behind
/// an `Arc`; holds no per-request state.
pub struct Shutter {
    repo: Arc<dyn Repo>,
    files: Arc<dyn FileRepo>,
    media: Arc<dyn MediaRepo>,
    jobs: Arc<dyn JobQueue>,
    social: Arc<dyn SocialRepo>,
    likes: social::LikeBuffer,
    /// Published posts as every viewer sees them alike (on one node only).
    posts_cache: cache::PostCache,
    blobs: Arc<dyn BlobStore>,
    events: Arc<dyn EventBus>,
    event_streams: events::StreamSlots,
    progress_gate: events::ProgressGate,
    /// Issues and checks the URLs that move bytes.
    transfers: Transfers,
    /// Wakes idle workers of this process when a job is enqueued here.
    job_signal: tokio::sync::Notify,
    /// Bounds CPU-heavy work (image processing) to one task per core.
    cpu: tokio::sync::Semaphore,
    uploads: UploadState,
    rate_limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    tokens: TokenKeys,
    oidc: Option<OidcVerifier>,
    optional: Vec<(&'static str, Arc<dyn OptionalBackend>)>,
    writer_locks: Option<Arc<dyn WriterLocks>>,
}

impl Shutter {
    pub fn new(deps: Deps) -> Self {
        let tokens = TokenKeys::new(
            &deps.jwt_secret,
            deps.config.public_url(),
            deps.config.auth.access_token_ttl.get(),
        );
        let oidc = deps.config.auth.oidc.clone().map(OidcVerifier::new);
        let transfers = Transfers::new(
            deps.blobs.clone(),
            deps.url_secret,
            &deps.config.public_url(),
            deps.config.storage.download_url_ttl.get(),
            deps.config.storage.multipart_threshold.0,
        );
        Shutter {
            repo: deps.repo,
            files: deps.files,
            media: deps.media,
            jobs: deps.jobs,
            social: deps.social,
            likes: social::LikeBuffer::default(),
            posts_cache: cache::PostCache::new(deps.one_node),
            blobs: deps.blobs,
            job_signal: tokio::sync::Notify::new(),
            cpu: tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            ),
            events: deps.events,
            event_streams: events::StreamSlots::default(),
            progress_gate: events::ProgressGate::default(),
            transfers,
            uploads: UploadState::default(),
            rate_limiter: deps.rate_limiter,
            clock: deps.clock,
            config: deps.config,
            tokens,
            oidc,
            optional: deps.optional,
            writer_locks: deps.writer_locks,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The URLs that move bytes (tus locations, redirects to the store).
    pub fn transfers(&self) -> &Transfers {
        &self.transfers
    }

    pub fn rate_limiter(&self) -> &dyn RateLimiter {
        self.rate_limiter.as_ref()
    }

    pub fn events(&self) -> &dyn EventBus {
        self.events.as_ref()
    }

    /// Checks the backends: the database and the blob store, which requests need, then the
    /// optional ones (Redis), without which the node runs degraded.
    pub async fn readiness(&self) -> Vec<Check> {
        // The whole chain of causes, for the log: "blob store unavailable" alone says little.
        let db = self
            .repo
            .ping()
            .await
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)));
        let storage = self
            .blobs
            .ping()
            .await
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)));
        let mut checks = vec![
            Check {
                name: "database",
                required: true,
                result: db,
            },
            Check {
                name: "storage",
                required: true,
                result: storage,
            },
        ];
        // Optional backends answer within a second, all at once, or count as failed: a probe
        // must not time out waiting for one the node runs without.
        let optional =
            futures::future::join_all(self.optional.iter().map(|(name, backend)| async move {
                let result =
                    match tokio::time::timeout(OPTIONAL_CHECK_TIMEOUT, backend.ping()).await {
                        Ok(answer) => answer.map_err(|e| format!("{e:#}")),
                        Err(_) => Err(format!("no answer within {OPTIONAL_CHECK_TIMEOUT:?}")),
                    };
                Check {
                    name,
                    required: false,
                    result,
                }
            }))
            .await;
        checks.extend(optional);
        checks
    }
}
