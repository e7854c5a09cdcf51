//! `--storage s3`: a local S3 server for the run, s3s-fs (a real S3 API over a directory,
//! checking SigV4 signatures) as `tools/s3s-fs-nodelay` serves it (`scripts/s3-server.sh
//! install` installs it), started on a free port with a fresh root directory, its one bucket
//! made by `mkdir` (s3s-fs maps buckets to directories). The server under test is
//! pointed at it through `SHUTTER_STORAGE__*`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// The bucket the server stores into.
pub const BUCKET: &str = "shutter-bench";
const ACCESS_KEY: &str = "shutter-bench";
const SECRET_KEY: &str = "shutter-bench-secret-key";
/// The binary, and the s3s-fs version it serves (`tools/s3s-fs-nodelay`).
const BINARY: &str = "s3s-fs-nodelay";
pub const S3S_FS_VERSION: &str = "0.14.1";

/// Where the S3 server is and how to sign for it.
#[derive(Clone, Debug)]
pub struct S3Endpoint {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Endpoint {
    /// The server's environment for this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SHUTTER_STORAGE__BACKEND", "s3".to_owned()),
            ("SHUTTER_STORAGE__S3__ENDPOINT", self.endpoint.clone()),
            ("SHUTTER_STORAGE__S3__BUCKET", self.bucket.clone()),
            ("SHUTTER_STORAGE__S3__ACCESS_KEY", self.access_key.clone()),
            ("SHUTTER_STORAGE__S3__SECRET_KEY", self.secret_key.clone()),
            ("SHUTTER_STORAGE__S3__PATH_STYLE", "true".to_owned()),
            ("SHUTTER_STORAGE__S3__REGION", "us-east-1".to_owned()),
        ]
    }
}

/// A running s3s-fs; killed when dropped.
pub struct S3Server {
    child: Child,
    pub endpoint: S3Endpoint,
    pub root: PathBuf,
}

/// [`BINARY`] on the `PATH`, else in `~/.cargo/bin`.
fn binary() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(BINARY))
            .find(|p| p.is_file())
    });
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin").join(BINARY))
        .filter(|p| p.is_file());
    on_path.or(in_cargo).with_context(|| {
        format!(
            "--storage s3 needs the {BINARY} binary (neither on the PATH nor in ~/.cargo/bin); \
             install it with `scripts/s3-server.sh install`"
        )
    })
}

impl S3Server {
    /// Starts s3s-fs on a free port over `root` (created, with the bucket in it), logging to
    /// `log_file`; returns once it accepts connections.
    pub async fn start(root: &Path, log_file: &Path) -> anyhow::Result<S3Server> {
        let bin = binary()?;
        std::fs::create_dir_all(root.join(BUCKET))
            .with_context(|| format!("creating the bucket directory in {}", root.display()))?;
        let port = crate::server::free_port()?;
        let log = std::fs::File::create(log_file)
            .with_context(|| format!("creating {}", log_file.display()))?;
        let log_err = log.try_clone()?;
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "s3s-fs exited during start-up ({status}); see {}",
                    log_file.display()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!(
                    "s3s-fs did not accept connections within 20 s; see {}",
                    log_file.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(S3Server {
            child,
            endpoint: S3Endpoint {
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: BUCKET.to_owned(),
                access_key: ACCESS_KEY.to_owned(),
                secret_key: SECRET_KEY.to_owned(),
            },
            root: root.to_path_buf(),
        })
    }

    /// The s3s-fs process id, to read its memory in `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops s3s-fs (SIGKILL: it holds nothing the run still needs).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping s3s-fs")?;
        Ok(())
    }
}
