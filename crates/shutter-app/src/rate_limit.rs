//! The in-process [`RateLimiter`]: GCRA (generic cell rate algorithm) over a sharded map.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request.
//! With a quota of `n` per minute each request advances the TAT by `60 s / n`; a request is
//! refused when the TAT would run more than a minute ahead of now. That allows a burst of `n`
//! and then a steady `n` per minute, and it needs no timers. The Redis adapter runs the same
//! arithmetic in a script so all nodes share one TAT per key.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{Clock, Quota, RateDecision, RateLimiter};

/// The window every quota is counted over (a minute).
pub const WINDOW_MS: i64 = 60_000;
const SHARDS: usize = 16;
/// A shard is swept of keys whose quota is whole again when it grows past this.
const SWEEP_AT: usize = 4096;

/// One GCRA step: the decision and the new TAT (unchanged when refused).
pub fn gcra(tat: Option<i64>, now: i64, quota: Quota) -> (RateDecision, i64) {
    let limit = quota.per_minute.max(1);
    let interval = interval_ms(limit);
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let ahead = new_tat - now;
    if ahead > WINDOW_MS {
        let retry_ms = ahead - WINDOW_MS;
        let decision = RateDecision {
            allowed: false,
            limit,
            remaining: 0,
            reset_secs: ceil_secs(tat - now),
            retry_after_secs: ceil_secs(retry_ms).max(1),
        };
        return (decision, tat);
    }
    let remaining = ((WINDOW_MS - ahead) / interval).clamp(0, i64::from(limit)) as u32;
    let decision = RateDecision {
        allowed: true,
        limit,
        remaining,
        reset_secs: ceil_secs(ahead),
        retry_after_secs: 0,
    };
    (decision, new_tat)
}

/// How far one request moves the TAT: the window over the quota, at least 1 ms (a quota
/// above 60 000 a minute counts as 60 000).
pub fn interval_ms(per_minute: u32) -> i64 {
    (WINDOW_MS / i64::from(per_minute.max(1))).max(1)
}

fn ceil_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

/// GCRA state kept in this process only.
pub struct InProcessRateLimiter {
    clock: std::sync::Arc<dyn Clock>,
    shards: Vec<Mutex<HashMap<String, i64>>>,
}

impl InProcessRateLimiter {
    pub fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        InProcessRateLimiter {
            clock,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, i64>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, key: &str, quota: Quota) -> anyhow::Result<RateDecision> {
        let now = self.clock.now().millis();
        let mut map = self
            .shard(key)
            .lock()
            .map_err(|_| anyhow::anyhow!("rate limiter lock poisoned"))?;
        if map.len() > SWEEP_AT {
            map.retain(|_, tat| *tat > now);
        }
        let (decision, tat) = gcra(map.get(key).copied(), now, quota);
        map.insert(key.to_owned(), tat);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_above_one_a_millisecond_counts_as_one_a_millisecond() {
        let quota = Quota {
            per_minute: 1_000_000,
        };
        let mut tat = None;
        for _ in 0..60_000 {
            let (d, t) = gcra(tat, 0, quota);
            assert!(d.allowed);
            tat = Some(t);
        }
        assert!(!gcra(tat, 0, quota).0.allowed);
    }

    #[test]
    fn allows_a_burst_of_the_quota_then_refuses_until_a_slot_frees() {
        let quota = Quota { per_minute: 10 };
        let mut tat = None;
        for i in 0..10 {
            let (d, t) = gcra(tat, 0, quota);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 9 - i);
            tat = Some(t);
        }
        let (d, t) = gcra(tat, 0, quota);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 6);
        assert_eq!(Some(t), tat);
        // One interval (6 s) later exactly one more is allowed.
        let (d, t) = gcra(tat, 6_000, quota);
        assert!(d.allowed);
        let (d, _) = gcra(Some(t), 6_000, quota);
        assert!(!d.allowed);
    }

    #[test]
    fn a_quiet_key_is_whole_again_after_a_minute() {
        let quota = Quota { per_minute: 3 };
        let (_, t) = gcra(None, 0, quota);
        let (d, _) = gcra(Some(t), 60_000, quota);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        assert_eq!(d.reset_secs, 20);
    }
}
