//! The client's own files, in its configuration directory (`--config-dir`,
//! `SHUTTER_CLI_CONFIG_DIR`, else `<user config dir>/shutter`, e.g. `~/.config/shutter`):
//!
//! - `credentials.json`: the session (server, user, access and refresh token);
//! - `uploads.json`: tus uploads in progress, so the same command resumes them.
//!
//! Both are written with mode 0600 (the directory, when created here, 0700): to a temporary
//! file in the same directory, synced, then renamed over the old one, so a reader (or a
//! crash) sees the old or the new contents, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

const CREDENTIALS: &str = "credentials.json";
const UPLOADS: &str = "uploads.json";

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
        let mut all = self.load_uploads()?;
        all.uploads.retain(|u| !u.same_source(entry));
        all.uploads.push(entry.clone());
        self.write(UPLOADS, &all)
    }

    /// Forgets the entry for `entry`'s source, if any.
    pub fn forget_upload(&self, entry: &PendingUpload) -> CliResult<()> {
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
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
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

/// Writes a new file readable and writable by its owner only, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A temporary file left by a crashed run of the same pid would make create_new fail.
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
}
