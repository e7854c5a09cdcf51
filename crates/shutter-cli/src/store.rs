//! The client's own files, in its configuration directory (`--config-dir`,
//! `SHUTTER_CLI_CONFIG_DIR`, else `<user config dir>/shutter`, e.g. `~/.config/shutter`):
//!
//! - `credentials.json`: the session (server, user, access and refresh token);
//! - `uploads.json`: tus uploads in progress, so the same command resumes them.
//!
//! Both are written with mode 0600 (the directory, when created here, 0700): to a temporary
//! file in the same directory, synced, then renamed over the old one, so a reader (or a
//! crash) sees the old or the new contents, never half of either.
//!
//! Several processes of this client may share the directory (two uploads in two terminals).
//! What reads a file, changes it and writes it back does so holding an exclusive advisory
//! lock (`flock`) on `credentials.lock` or `uploads.lock` beside it, so that no change is
//! lost and no refresh token is presented twice. The lock goes with the process, however it
//! ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

const CREDENTIALS: &str = "credentials.json";
const UPLOADS: &str = "uploads.json";
const CREDENTIALS_LOCK: &str = "credentials.lock";
const UPLOADS_LOCK: &str = "uploads.lock";

/// How long a process waits for a lock another one holds. The credentials' is held for one
/// refresh (a request of at most [`crate::api::REQUEST_TIMEOUT`]); the uploads' for a read
/// and a write of a small file.
const CREDENTIALS_LOCK_WAIT: Duration = Duration::from_secs(150);
const UPLOADS_LOCK_WAIT: Duration = Duration::from_secs(30);

/// How often a held lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Makes the name of each temporary file of this process its own.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// An exclusive lock on one of the store's lock files, released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: Option<std::fs::File>,
}

/// A signed-in session on one server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The server's base URL, normalised (see [`crate::api::normalise_server`]).
    pub server: String,
    pub username: String,
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// One tus upload in progress: the file it sends (identified by its path, size, modification
/// time and content) and where on the server it goes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingUpload {
    pub server: String,
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    pub sha256: String,
    pub tus_url: String,
    pub file_id: String,
}

impl PendingUpload {
    /// Whether this entry is for the same upload (the same file, unchanged, to the same
    /// server).
    pub fn same_source(&self, other: &PendingUpload) -> bool {
        self.server == other.server
            && self.path == other.path
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.sha256 == other.sha256
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Uploads {
    #[serde(default)]
    pub uploads: Vec<PendingUpload>,
}

#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`, or in the default configuration directory.
    pub fn new(dir: Option<PathBuf>) -> CliResult<Store> {
        let dir = match dir {
            Some(dir) => dir,
            None => dirs::config_dir()
                .map(|d| d.join("shutter"))
                .ok_or_else(|| {
                    CliError::usage(
                        "no configuration directory is known for this user: pass --config-dir",
                    )
                })?,
        };
        Ok(Store { dir })
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS)
    }

    pub fn load_session(&self) -> CliResult<Option<Session>> {
        self.read(CREDENTIALS)
    }

    pub fn save_session(&self, session: &Session) -> CliResult<()> {
        self.write(CREDENTIALS, session)
    }

    /// Removes the credentials; whether there were any.
    pub fn delete_session(&self) -> CliResult<bool> {
        let path = self.credentials_path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CliError::io("removing", &path, e)),
        }
    }

    pub fn load_uploads(&self) -> CliResult<Uploads> {
        Ok(self.read(UPLOADS)?.unwrap_or_default())
    }

    /// Remembers `entry`, replacing any entry for the same source.
    pub fn remember_upload(&self, entry: &PendingUpload) -> CliResult<()> {
        let _lock = self.lock_uploads()?;
        let mut all = self.load_uploads()?;
        all.uploads.retain(|u| !u.same_source(entry));
        all.uploads.push(entry.clone());
        self.write(UPLOADS, &all)
    }

    /// Forgets the entry for `entry`'s source, if any.
    pub fn forget_upload(&self, entry: &PendingUpload) -> CliResult<()> {
        let _lock = self.lock_uploads()?;
        let mut all = self.load_uploads()?;
        let before = all.uploads.len();
        all.uploads.retain(|u| !u.same_source(entry));
        if all.uploads.len() == before {
            return Ok(());
        }
        self.write(UPLOADS, &all)
    }

    /// The upload in progress for this source, if one is remembered.
    pub fn find_upload(&self, probe: &PendingUpload) -> CliResult<Option<PendingUpload>> {
        Ok(self
            .load_uploads()?
            .uploads
            .into_iter()
            .find(|u| u.same_source(probe)))
    }

    /// Holds the credentials' lock: whoever reads the stored session to replace it (a
    /// refresh, a login, a logout) does so holding it. Waits without blocking the runtime.
    pub async fn lock_credentials(&self) -> CliResult<Lock> {
        let (mut file, path) = self.open_lock(CREDENTIALS_LOCK)?;
        let deadline = Instant::now() + CREDENTIALS_LOCK_WAIT;
        loop {
            file = match try_lock(file, &path)? {
                Ok(lock) => return Ok(lock),
                Err(busy) => busy,
            };
            if Instant::now() >= deadline {
                return Err(lock_timeout(&path, CREDENTIALS_LOCK_WAIT));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Holds the lock of `uploads.json` (for a read and a write: a short wait at most).
    fn lock_uploads(&self) -> CliResult<Lock> {
        let (mut file, path) = self.open_lock(UPLOADS_LOCK)?;
        let deadline = Instant::now() + UPLOADS_LOCK_WAIT;
        loop {
            file = match try_lock(file, &path)? {
                Ok(lock) => return Ok(lock),
                Err(busy) => busy,
            };
            if Instant::now() >= deadline {
                return Err(lock_timeout(&path, UPLOADS_LOCK_WAIT));
            }
            std::thread::sleep(LOCK_POLL);
        }
    }

    fn open_lock(&self, name: &str) -> CliResult<(std::fs::File, PathBuf)> {
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| CliError::io("opening", &path, e))?;
        Ok((file, path))
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> CliResult<Option<T>> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CliError::io("reading", &path, e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::new(
                "io_error",
                format!(
                    "{} is not readable ({e}); remove it and try again",
                    path.display()
                ),
            )
        })
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> CliResult<()> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| CliError::new("internal", format!("encoding {name}: {e}")))?;
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
        let written = write_private(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(CliError::io("writing", &path, e));
        }
        Ok(())
    }

    fn ensure_dir(&self) -> CliResult<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .map_err(|e| CliError::io("creating", &self.dir, e))
    }
}

/// One try at the lock of `file`: `Ok(lock)`, or the file back when another process holds
/// it. A file system without locks gets a lock that holds nothing (going on unlocked beats
/// refusing to work there).
fn try_lock(file: std::fs::File, path: &Path) -> CliResult<Result<Lock, std::fs::File>> {
    match file.try_lock() {
        Ok(()) => Ok(Ok(Lock { _file: Some(file) })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Err(file)),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            Ok(Ok(Lock { _file: None }))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::io("locking", path, e)),
    }
}

fn lock_timeout(path: &Path, waited: Duration) -> CliError {
    CliError::new(
        "timeout",
        format!(
            "another shutter-cli process has held {} for {} s",
            path.display(),
            waited.as_secs()
        ),
    )
}

/// Writes a new file readable and writable by its owner only, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A temporary file left by a crashed run with the same pid would make create_new fail.
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &Path, sha: &str) -> PendingUpload {
        PendingUpload {
            server: "http://127.0.0.1:8080/".into(),
            path: dir.join("a.bin"),
            size: 10,
            mtime_ns: 1,
            sha256: sha.into(),
            tus_url: "http://127.0.0.1:8080/v1/tus/x".into(),
            file_id: "x".into(),
        }
    }

    #[test]
    fn credentials_are_private_and_replaced_whole() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = std::env::temp_dir().join(format!("shutter-cli-store-{}", std::process::id()));
        let store = Store::new(Some(tmp.join("nested")))?;
        assert_eq!(store.load_session()?, None);
        let mut session = Session {
            server: "http://127.0.0.1:8080/".into(),
            username: "alice".into(),
            user_id: "u".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
        };
        store.save_session(&session)?;
        session.refresh_token = "r2".into();
        store.save_session(&session)?;
        assert_eq!(store.load_session()?, Some(session));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.credentials_path())?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(store.dir())?.permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let leftovers = std::fs::read_dir(store.dir())?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        assert!(store.delete_session()?);
        assert!(!store.delete_session()?);
        std::fs::remove_dir_all(&tmp)?;
        Ok(())
    }

    #[test]
    fn uploads_are_found_by_their_source() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = std::env::temp_dir().join(format!("shutter-cli-uploads-{}", std::process::id()));
        let store = Store::new(Some(tmp.clone()))?;
        let a = entry(&tmp, "aa");
        store.remember_upload(&a)?;
        assert_eq!(store.find_upload(&a)?, Some(a.clone()));
        let changed = entry(&tmp, "bb");
        assert_eq!(store.find_upload(&changed)?, None);
        store.forget_upload(&a)?;
        assert_eq!(store.find_upload(&a)?, None);
        std::fs::remove_dir_all(&tmp)?;
        Ok(())
    }

    #[test]
    fn concurrent_changes_to_the_uploads_are_all_kept() -> Result<(), Box<dyn std::error::Error>> {
        // Each thread opens the lock file itself, so they exclude each other as processes do.
        let tmp = std::env::temp_dir().join(format!("shutter-cli-locks-{}", std::process::id()));
        let store = Store::new(Some(tmp.clone()))?;
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let tmp = tmp.clone();
                std::thread::spawn(move || -> CliResult<()> {
                    let mut e = entry(&tmp, &format!("{i:02}"));
                    for round in 0..10 {
                        e.file_id = format!("{i}-{round}");
                        store.remember_upload(&e)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for thread in threads {
            thread.join().map_err(|_| "a thread panicked")??;
        }
        let mut ids: Vec<_> = store
            .load_uploads()?
            .uploads
            .into_iter()
            .map(|u| u.file_id)
            .collect();
        ids.sort();
        let want: Vec<_> = (0..8).map(|i| format!("{i}-9")).collect();
        assert_eq!(ids, want);
        std::fs::remove_dir_all(&tmp)?;
        Ok(())
    }

    #[tokio::test]
    async fn the_credentials_lock_is_exclusive() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = std::env::temp_dir().join(format!("shutter-cli-lock-{}", std::process::id()));
        let store = Store::new(Some(tmp.clone()))?;
        let held = store.lock_credentials().await?;
        let (file, path) = store.open_lock(CREDENTIALS_LOCK)?;
        let file = match try_lock(file, &path)? {
            Ok(_) => return Err("a second lock while the first is held".into()),
            Err(file) => file,
        };
        drop(held);
        assert!(try_lock(file, &path)?.is_ok());
        std::fs::remove_dir_all(&tmp)?;
        Ok(())
    }
}
