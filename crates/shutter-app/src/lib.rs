//! Shutter's use cases. Each public method of [`Shutter`] is one thing a client can ask for;
//! it checks the rules and talks to the outside only through the ports in [`ports`].
//!
//! **Invariant:** no SQL, no HTTP server types and no image code here; adapters implement
//! the ports in their own crates.

pub mod accounts;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod oidc;
pub mod ports;
pub mod posts;
pub mod rate_limit;

use std::sync::Arc;

use shutter_core::config::Config;

pub use error::{AppError, AppResult};

use crate::auth::TokenKeys;
use crate::oidc::OidcVerifier;
use crate::ports::{Clock, RateLimiter, Repo};

/// What the use cases are built from: the adapters chosen at start-up and the configuration.
pub struct Deps {
    pub repo: Arc<dyn Repo>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// The secret that signs Shutter's own access tokens (HS256).
    pub jwt_secret: Vec<u8>,
}

/// The application: every use case, over the ports it was built with. Cheap to share behind
/// an `Arc`; holds no per-request state.
pub struct Shutter {
    repo: Arc<dyn Repo>,
    rate_limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    tokens: TokenKeys,
    oidc: Option<OidcVerifier>,
}

impl Shutter {
    pub fn new(deps: Deps) -> Self {
        let tokens = TokenKeys::new(
            &deps.jwt_secret,
            deps.config.public_url(),
            deps.config.auth.access_token_ttl.get(),
        );
        let oidc = deps.config.auth.oidc.clone().map(OidcVerifier::new);
        Shutter {
            repo: deps.repo,
            rate_limiter: deps.rate_limiter,
            clock: deps.clock,
            config: deps.config,
            tokens,
            oidc,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn rate_limiter(&self) -> &dyn RateLimiter {
        self.rate_limiter.as_ref()
    }

    /// Checks the dependencies a request needs: the database answers.
    pub async fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        let db = self.repo.ping().await.map_err(|e| e.to_string());
        vec![("database", db)]
    }
}
