//! `RateLimiter` scenarios: each runs with two nodes' limiters (one limiter twice when in
//! process), which must count as one.

use std::sync::Arc;

use shutter_app::ports::{Quota, RateLimiter, SystemClock};
use shutter_app::rate_limit::InProcessRateLimiter;
use shutter_core::Id;

use crate::redis;

struct Nodes {
    a: Arc<dyn RateLimiter>,
    b: Arc<dyn RateLimiter>,
}

fn in_process() -> Nodes {
    let limiter: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::new(Arc::new(SystemClock)));
    Nodes {
        a: limiter.clone(),
        b: limiter,
    }
}

async fn redis_nodes() -> Option<Nodes> {
    let redis = redis().await?;
    let node = || -> Arc<dyn RateLimiter> {
        Arc::new(shutter_redis::RedisRateLimiter::new(
            redis.clone(),
            Arc::new(SystemClock),
        ))
    };
    Some(Nodes {
        a: node(),
        b: node(),
    })
}

/// A key of this run only (Redis outlives the test).
fn key() -> String {
    format!("test:{}", Id::new())
}

/// The quota's burst is shared by both nodes: requests alternating between them are allowed
/// `per_minute` times in all, with `remaining` counting down, and then refused on either
/// with a wait.
async fn the_quota_is_shared_by_every_node(nodes: Nodes) {
    let (key, quota) = (key(), Quota { per_minute: 10 });
    for n in 0..10u32 {
        let node = if n % 2 == 0 { &nodes.a } else { &nodes.b };
        let d = node.check(&key, quota).await.unwrap();
        assert!(d.allowed, "request {n} is within the quota");
        assert_eq!(d.limit, 10);
        assert_eq!(d.remaining, 9 - n, "remaining after request {n}");
    }
    for node in [&nodes.a, &nodes.b] {
        let d = node.check(&key, quota).await.unwrap();
        assert!(!d.allowed, "the 11th request is refused on every node");
        assert_eq!(d.remaining, 0);
        assert!((1..=6).contains(&d.retry_after_secs), "{d:?}");
    }
}

/// Keys are counted apart.
async fn keys_are_counted_apart(nodes: Nodes) {
    let (one, two, quota) = (key(), key(), Quota { per_minute: 2 });
    for _ in 0..2 {
        assert!(nodes.a.check(&one, quota).await.unwrap().allowed);
    }
    assert!(!nodes.b.check(&one, quota).await.unwrap().allowed);
    assert!(nodes.b.check(&two, quota).await.unwrap().allowed);
}

/// Requests racing on both nodes never get more than the quota between them.
async fn racing_requests_never_exceed_the_quota(nodes: Nodes) {
    let (key, quota) = (key(), Quota { per_minute: 50 });
    let mut tasks = Vec::new();
    for n in 0..200 {
        let node = if n % 2 == 0 {
            nodes.a.clone()
        } else {
            nodes.b.clone()
        };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            node.check(&key, quota).await.unwrap().allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    // 50 in the burst, and at most one more as the clock moves on during the race.
    assert!((50..=51).contains(&allowed), "{allowed} allowed");
}

macro_rules! rate_limiter_conformance {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::in_process()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(nodes) = super::redis_nodes().await {
                        super::$scenario(nodes).await;
                    }
                }
            )*
        }
    };
}

rate_limiter_conformance!(
    the_quota_is_shared_by_every_node,
    keys_are_counted_apart,
    racing_requests_never_exceed_the_quota,
);
