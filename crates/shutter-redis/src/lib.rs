//! Shutter's Redis adapters (`redis.url`), for deployments of more than one node:
//! [`RedisRateLimiter`] keeps one GCRA state per key for all nodes, and [`RedisEventRelay`]
//! carries live events between nodes over pub/sub.
//!
//! Redis going away is a degraded mode, not an outage: the limiter falls back to this
//! node's own counts, and live events to this node's own subscribers, each logging once when
//! that starts and once when it ends.

mod rate_limit;
mod relay;

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use rate_limit::RedisRateLimiter;
pub use relay::RedisEventRelay;

/// How long one command may take before Redis counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to the Redis at `url`, shared by the adapters and reconnected as needed.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
}

impl Redis {
    /// Connects to `url` (`redis://host:port/db`), failing when Redis does not answer.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("redis.url is not a Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .with_context(|| format!("cannot connect to Redis at {}", redacted(url)))?;
        Ok(Redis { client, manager })
    }
}

#[async_trait::async_trait]
impl shutter_app::ports::OptionalBackend for Redis {
    /// Answers when Redis does (readiness).
    async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.manager.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}
