//! The [`RateLimiter`] on Redis: the GCRA step of [`shutter_app::rate_limit::gcra`] done
//! atomically by one Lua script, on Redis' clock, so every node counts against one
//! theoretical arrival time per key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shutter_app::backoff::FailurePause;
use shutter_app::ports::{Clock, Quota, RateDecision, RateLimiter};
use shutter_app::rate_limit::{gcra, interval_ms, InProcessRateLimiter, WINDOW_MS};

use crate::Redis;

/// Reads the key's TAT, advances it by the interval unless that runs more than the window
/// ahead (the arithmetic of `gcra`), and answers `{now, tat before the step or -1}`; the
/// node then computes the same decision with `gcra` for the headers.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local before = -1
local tat = now
if stored then
  before = tonumber(stored)
  if before > now then tat = before end
end
local new_tat = tat + interval
if new_tat - now <= window then
  redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
end
return {now, before}
";

pub struct RedisRateLimiter {
    redis: Redis,
    script: redis::Script,
    /// Counts while Redis cannot be reached: per node, as without Redis.
    fallback: InProcessRateLimiter,
    /// After a failure Redis is not asked again for a moment: requests do not each wait for
    /// a Redis that is away.
    redis_state: FailurePause,
}

/// How long the limiter counts per node after Redis failed, before asking it again.
const BACKOFF: Duration = Duration::from_secs(1);

impl RedisRateLimiter {
    pub fn new(redis: Redis, clock: Arc<dyn Clock>) -> Self {
        RedisRateLimiter {
            redis,
            script: redis::Script::new(SCRIPT),
            fallback: InProcessRateLimiter::new(clock),
            redis_state: FailurePause::default(),
        }
    }

    async fn check_shared(&self, key: &str, quota: Quota) -> anyhow::Result<RateDecision> {
        let interval = interval_ms(quota.per_minute);
        let mut conn = self.redis.manager.clone();
        let (now, before): (i64, i64) = self
            .script
            .key(format!("shutter:rl:{key}"))
            .arg(interval)
            .arg(WINDOW_MS)
            .invoke_async(&mut conn)
            .await?;
        let before = (before >= 0).then_some(before);
        Ok(gcra(before, now, quota).0)
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> anyhow::Result<RateDecision> {
        if self.redis_state.paused() {
            return self.fallback.check(key, quota).await;
        }
        match self.check_shared(key, quota).await {
            Ok(decision) => {
                if self.redis_state.answered() {
                    tracing::info!("rate limits are shared through Redis again");
                }
                Ok(decision)
            }
            Err(e) => {
                if self.redis_state.failed(BACKOFF) {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "Redis cannot be reached: rate limits count per node until it can"
                    );
                }
                self.fallback.check(key, quota).await
            }
        }
    }
}
