//! `Idempotency-Key`: the same key from the same user within 24 h with the same request
//! replays the first response and creates nothing.

use sha2::{Digest, Sha256};
use shutter_core::{ErrorCode, Id};

use crate::auth::hex;
use crate::ports::{IdempotencyBegin, IdempotencyStart};
use crate::{AppError, AppResult, Shutter};

const WINDOW_SECS: i64 = 24 * 3600;
/// A request still marked in flight after this long was abandoned (its process died).
const STALE_SECS: i64 = 300;

/// What to do with an idempotent request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentStart {
    /// Run it, then [`Shutter::idempotency_finish`].
    Proceed,
    /// Answer with the stored response.
    Replay { status: u16, body: String },
}

/// Checks a client's key: 1..255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The fingerprint of a request: method, path and body.
pub fn request_fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex(&h.finalize())
}

impl Shutter {
    pub async fn idempotency_start(
        &self,
        user: Id,
        key: &str,
        fingerprint: String,
    ) -> AppResult<IdempotentStart> {
        if !valid_key(key) {
            return Err(AppError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let now = self.clock.now();
        let start = IdempotencyStart {
            user_id: user,
            key: key.to_owned(),
            request_hash: fingerprint,
            now,
            expired_before: now.plus_secs(-WINDOW_SECS),
            stale_before: now.plus_secs(-STALE_SECS),
        };
        match self.repo.idempotency_begin(start).await? {
            IdempotencyBegin::Started => Ok(IdempotentStart::Proceed),
            IdempotencyBegin::Replay { status, body } => {
                Ok(IdempotentStart::Replay { status, body })
            }
            IdempotencyBegin::Mismatch => Err(AppError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request",
            )),
            IdempotencyBegin::InFlight => Err(AppError::new(
                ErrorCode::Conflict,
                "a request with this Idempotency-Key is still in progress",
            )),
        }
    }

    /// Stores the outcome for replay. Server errors are not stored: the key is released so
    /// the client's retry runs the request again.
    pub async fn idempotency_finish(
        &self,
        user: Id,
        key: &str,
        status: u16,
        body: &str,
    ) -> AppResult<()> {
        if status >= 500 {
            self.repo.idempotency_abandon(user, key).await?;
        } else {
            self.repo
                .idempotency_complete(user, key, status, body)
                .await?;
        }
        Ok(())
    }
}
