//! The [`EventRelay`] on Redis pub/sub: `PUBLISH` through the shared connection, `SUBSCRIBE`
//! on a connection of its own.

use async_trait::async_trait;
use futures::StreamExt;
use shutter_app::ports::{EventRelay, RelayStream};

use crate::Redis;

/// The channel every node publishes and subscribes on.
const CHANNEL: &str = "shutter:events";

pub struct RedisEventRelay {
    redis: Redis,
}

impl RedisEventRelay {
    pub fn new(redis: Redis) -> Self {
        RedisEventRelay { redis }
    }
}

#[async_trait]
impl EventRelay for RedisEventRelay {
    async fn send(&self, message: &str) -> anyhow::Result<()> {
        let mut conn = self.redis.manager.clone();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(message)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn listen(&self) -> anyhow::Result<RelayStream> {
        let mut pubsub = self.redis.client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        // The stream ends when the connection is lost; the caller listens again.
        Ok(Box::pin(pubsub.into_on_message().filter_map(
            |msg| async move { msg.get_payload::<String>().ok() },
        )))
    }
}
