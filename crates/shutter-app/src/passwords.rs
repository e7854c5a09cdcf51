//! Argon2id password hashing on a small pool of threads of its own.
//!
//! Each hash needs 19 MiB of working memory. Run on Tokio's blocking pool (up to 512
//! threads), a burst of logins hashed hundreds of passwords at once and left their memory in
//! the allocator's per-thread arenas: a few hundred failed logins took a server to gigabytes.
//! Here at most one hash per core runs at a time, each pool thread reuses one working buffer
//! for every hash it computes, and a burst beyond the queue is refused with `503` and
//! `Retry-After` instead of waiting without bound. Memory for hashing is therefore fixed:
//! threads × 19 MiB, whatever the traffic.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{
    rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::{AppError, AppResult};

/// Sign-ins and registrations waiting for a hashing thread before new ones are refused.
const QUEUE: usize = 256;
/// The most working memory a stored hash may ask for (its `m` parameter), in KiB blocks.
const MAX_BLOCKS: usize = 256 * 1024;

/// Argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2h1dHRlcmR1bW15c2FsdA$Yv9Yq0cpG2dC8Gq3mO7dHnNqYwC0p7mGm3lX6q2hV9I";

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<AppResult<String>>,
    },
    Verify {
        password: String,
        hash: Option<String>,
        reply: oneshot::Sender<AppResult<bool>>,
    },
}

struct Pool {
    sender: SyncSender<Job>,
}

/// The process's pool, started on first use with one thread per core (at most four).
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 4);
        let (sender, receiver) = sync_channel::<Job>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("shutter-argon2-{n}"))
                .spawn(move || run(&receiver));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Pool { sender }
    })
}

fn run(receiver: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match receiver.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(hash_with(&mut memory, &password));
            }
            Ok(Job::Verify {
                password,
                hash,
                reply,
            }) => {
                let known = hash.is_some();
                let hash = hash.as_deref().unwrap_or(DUMMY_HASH);
                let result = verify_with(&mut memory, &password, hash).map(|ok| known && ok);
                let _ = reply.send(result);
            }
            Err(_) => return, // the process is ending
        }
    }
}

async fn submit<T>(job: impl FnOnce(oneshot::Sender<AppResult<T>>) -> Job) -> AppResult<T> {
    let (reply, answer) = oneshot::channel();
    match pool().sender.try_send(job(reply)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            metrics::counter!("shutter_password_hash_rejected_total").increment(1);
            return Err(AppError {
                detail: "too many sign-ins at once; try again in a moment".into(),
                ..AppError::unavailable(anyhow::anyhow!(
                    "{QUEUE} password hashes are already waiting"
                ))
            });
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(AppError::internal(anyhow::anyhow!(
                "the password hashing threads have stopped"
            )))
        }
    }
    answer.await.map_err(|_| {
        AppError::internal(anyhow::anyhow!("a password hashing thread dropped its job"))
    })?
}

/// Hashes a password with Argon2id (default parameters, a new random salt) into its PHC
/// string.
pub async fn hash_password(password: String) -> AppResult<String> {
    submit(|reply| Job::Hash { password, reply }).await
}

/// Verifies a password against a stored PHC hash. With no hash (unknown user) a fixed hash is
/// checked instead, so the answer takes as long either way.
pub async fn verify_password(password: String, hash: Option<String>) -> AppResult<bool> {
    submit(|reply| Job::Verify {
        password,
        hash,
        reply,
    })
    .await
}

fn argon_err(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(anyhow::anyhow!("argon2 {what}: {e}"))
}

/// `memory` grown (never shrunk) to `blocks`, and the slice of it one hash uses.
fn working_memory(memory: &mut Vec<Block>, blocks: usize) -> AppResult<&mut [Block]> {
    if blocks > MAX_BLOCKS {
        return Err(argon_err(
            "parameters",
            format!("a hash asking for {blocks} KiB of memory is refused"),
        ));
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    Ok(&mut memory[..blocks])
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> AppResult<String> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&argon, memory, password, salt.as_salt(), &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| argon_err("parameters", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| argon_err("output", e))?),
    };
    Ok(phc.to_string())
}

/// Argon2 of `password` with `salt` into `out`, in the thread's reused working memory.
fn hash_into(
    argon: &Argon2<'_>,
    memory: &mut Vec<Block>,
    password: &str,
    salt: Salt<'_>,
    out: &mut [u8],
) -> AppResult<()> {
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| argon_err("salt", e))?;
    let blocks = argon.params().block_count();
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_raw,
            out,
            working_memory(memory, blocks)?,
        )
        .map_err(|e| argon_err("hashing", e))
}

fn verify_with(memory: &mut Vec<Block>, password: &str, hash: &str) -> AppResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| argon_err("stored hash", e))?;
    let algorithm =
        Algorithm::try_from(parsed.algorithm).map_err(|e| argon_err("stored algorithm", e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| argon_err("stored version", e))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| argon_err("stored parameters", e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(argon_err("stored hash", "no salt or no hash"));
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    hash_into(&argon, memory, password, salt, &mut out)?;
    let got = Output::new(&out).map_err(|e| argon_err("output", e))?;
    // `Output`'s equality is constant-time.
    Ok(got == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse".into()).await.ok();
        assert!(hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")));
        assert_eq!(
            verify_password("correct horse".into(), hash.clone())
                .await
                .ok(),
            Some(true)
        );
        assert_eq!(
            verify_password("wrong horse".into(), hash).await.ok(),
            Some(false)
        );
        assert_eq!(
            verify_password("anything".into(), None).await.ok(),
            Some(false)
        );
    }

    #[tokio::test]
    async fn hashes_agree_with_the_reference_implementation_both_ways() {
        // Ours verified by the crate's own verifier, and the crate's verified by ours: the
        // reused working memory changes nothing.
        let ours = hash_password("tr0ub4dor&3".into())
            .await
            .ok()
            .unwrap_or_default();
        let parsed = PasswordHash::new(&ours);
        assert!(parsed.is_ok_and(|p| Argon2::default()
            .verify_password(b"tr0ub4dor&3", &p)
            .is_ok()));
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"hunter22", &salt)
            .map(|h| h.to_string())
            .ok();
        for _ in 0..3 {
            assert_eq!(
                verify_password("hunter22".into(), theirs.clone())
                    .await
                    .ok(),
                Some(true)
            );
            assert_eq!(
                verify_password("hunter23".into(), theirs.clone())
                    .await
                    .ok(),
                Some(false)
            );
        }
    }

    #[tokio::test]
    async fn an_unreadable_stored_hash_is_an_internal_error() {
        let got = verify_password("x".into(), Some("not a hash".into())).await;
        assert_eq!(
            got.err().map(|e| e.code),
            Some(shutter_core::ErrorCode::Internal)
        );
    }
}
