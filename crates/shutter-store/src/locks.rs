//! [`WriterLocks`] on PostgreSQL: session advisory locks, all of a node's on one connection
//! of its own. A node that dies closes that connection and PostgreSQL frees its locks at
//! once, so an upload its writer left behind can be resumed on another node straight away.
//!
//! If the connection itself is lost (PostgreSQL restarted), the locks it held are gone with
//! it; the next lock opens a new one. Writers that were running then go on unguarded until
//! they finish, as they would with PostgreSQL down anyway.

use async_trait::async_trait;
use shutter_app::ports::{RepoError, RepoResult, WriterLocks};
use shutter_core::Id;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

use crate::error::repo_error;

pub struct PgWriterLocks {
    pool: PgPool,
    conn: Mutex<Option<PgConnection>>,
}

impl PgWriterLocks {
    pub fn new(pool: PgPool) -> Self {
        PgWriterLocks {
            pool,
            conn: Mutex::new(None),
        }
    }
}

/// The advisory lock key of an upload: the id's last 64 bits (random in a UUIDv7).
fn key(id: Id) -> i64 {
    let bytes = id.as_uuid().into_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    i64::from_be_bytes(low)
}

#[async_trait]
impl WriterLocks for PgWriterLocks {
    async fn try_lock(&self, id: Id) -> RepoResult<bool> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            let options = self.pool.connect_options();
            *slot = Some(
                PgConnection::connect_with(&options)
                    .await
                    .map_err(|e| RepoError::Unavailable(e.into()))?,
            );
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| RepoError::Other(anyhow::anyhow!("no lock connection")))?;
        match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(key(id))
            .fetch_one(&mut *conn)
            .await
        {
            Ok(taken) => Ok(taken),
            Err(e) => {
                // A broken connection is replaced on the next lock.
                *slot = None;
                Err(repo_error(e))
            }
        }
    }

    async fn unlock(&self, id: Id) {
        let mut slot = self.conn.lock().await;
        let Some(conn) = slot.as_mut() else {
            return; // the connection, and its locks, are gone already
        };
        if let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key(id))
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(file.id = %id, error = format!("{e:#}"), "could not release an upload's writer lock; replacing its connection");
            *slot = None;
        }
    }
}
