//! Signing secrets: generated on first start into `server.secrets_dir` (default
//! `<data_dir>/secrets/`) with mode 0600 and reused after, so tokens and signed URLs survive
//! restarts, and every node that shares the directory accepts the others' tokens and URLs.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;

const SECRET_LEN: usize = 64;

/// The secret stored as `<dir>/<name>`, created if missing.
pub fn load_or_create(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    create_private_dir(dir)?;
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => anyhow::bail!(
            "secret {} is shorter than 32 bytes; remove it to have a new one made",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    // Written whole and fsynced under a name of its own, then published with `hard_link`,
    // which fails if the name exists: a reader sees no secret or a complete one, and of two
    // processes starting together exactly one publishes, the other reads the winner's.
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let temp = dir.join(format!(".{name}.{}.tmp", shutter_app::auth::hex(&suffix)));
    let published = write_private(&temp, &secret).and_then(|()| fs::hard_link(&temp, &path));
    let _ = fs::remove_file(&temp);
    match published {
        Ok(()) => {
            fs::File::open(dir).and_then(|d| d.sync_all()).ok();
            tracing::info!(path = %path.display(), "generated a new signing secret");
            Ok(secret)
        }
        // Another process published first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(fs::read(&path)?),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A new file at `path` (mode 0600) holding `bytes`, on disk when this returns.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Barrier};

    use super::*;

    /// A `serve` and a `worker` (here: many threads) starting together on a fresh data
    /// directory all get the same complete secret, never a half-written one.
    #[test]
    fn racing_creators_all_read_the_same_complete_secret() {
        const THREADS: usize = 8;
        for round in 0..300 {
            let dir = tempfile::tempdir().unwrap();
            let start = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (path, start) = (dir.path().to_path_buf(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        load_or_create(&path.join("secrets"), "jwt.key")
                    })
                })
                .collect();
            let secrets: Vec<Vec<u8>> = threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap()
                        .unwrap_or_else(|e| panic!("round {round}: {e:#}"))
                })
                .collect();
            assert!(secrets.iter().all(|s| *s == secrets[0]), "round {round}");
            assert_eq!(secrets[0].len(), SECRET_LEN, "round {round}");
            assert_eq!(
                fs::read(dir.path().join("secrets/jwt.key")).unwrap(),
                secrets[0]
            );
            let left: Vec<_> = fs::read_dir(dir.path().join("secrets"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                left,
                vec!["jwt.key"],
                "round {round}: no temporary files left"
            );
        }
    }
}
