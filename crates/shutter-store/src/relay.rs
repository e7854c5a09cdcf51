//! The [`EventRelay`] on PostgreSQL: `NOTIFY` on one channel, `LISTEN` on a connection of its
//! own, so nodes that share only the database still share live events.

use async_trait::async_trait;
use shutter_app::ports::{EventRelay, RelayStream};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

/// The channel every node notifies and listens on.
const CHANNEL: &str = "shutter_events";

pub struct PgEventRelay {
    pool: PgPool,
}

impl PgEventRelay {
    pub fn new(pool: PgPool) -> Self {
        PgEventRelay { pool }
    }
}

#[async_trait]
impl EventRelay for PgEventRelay {
    async fn send(&self, message: &str) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn listen(&self) -> anyhow::Result<RelayStream> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        // `try_recv` answers `None` when the connection was lost (notifications sent
        // meanwhile are gone): the stream ends there and the caller listens again.
        Ok(Box::pin(futures::stream::unfold(
            listener,
            |mut listener| async move {
                match listener.try_recv().await {
                    Ok(Some(notification)) => Some((notification.payload().to_owned(), listener)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "the live-events listener stopped"
                        );
                        None
                    }
                }
            },
        )))
    }
}
