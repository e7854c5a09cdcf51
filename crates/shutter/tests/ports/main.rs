//! Conformance of the ports that have an adapter for scale-out besides the in-process one:
//! the same scenarios on every adapter, as the store's and the blob store's suites do.
//!
//! - `EventBus` (`event_bus.rs`): in process; relayed between nodes through PostgreSQL
//!   `NOTIFY` when `SHUTTER_TEST_POSTGRES_URL` is set; through Redis pub/sub when
//!   `SHUTTER_TEST_REDIS_URL` is set.
//! - `RateLimiter` (`rate_limiter.rs`): in process; in Redis when `SHUTTER_TEST_REDIS_URL`
//!   is set.
//! - `WriterLocks` (`writer_locks.rs`): on PostgreSQL, its one adapter, when
//!   `SHUTTER_TEST_POSTGRES_URL` is set.
//!
//! A "node" of a relayed bus is a bus of its own on the same relay, as each `shutter` process
//! has one. When a variable is set and its server cannot be used, the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod event_bus;
mod rate_limiter;
mod writer_locks;

pub const POSTGRES_URL_VAR: &str = "SHUTTER_TEST_POSTGRES_URL";
pub const REDIS_URL_VAR: &str = "SHUTTER_TEST_REDIS_URL";

/// The variable's value, or `None` with a note that these scenarios do not run.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("{var} is not set: the scenarios on that service do not run");
            None
        }
    }
}

/// A connection to the Redis the run names (panics when it is named and does not answer).
pub async fn redis() -> Option<shutter_redis::Redis> {
    let url = service_url(REDIS_URL_VAR)?;
    Some(
        shutter_redis::Redis::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("Redis at {url} cannot be used: {e:#}")),
    )
}
