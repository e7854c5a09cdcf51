//! The real server under test: `target/release/shutter`, built by `cargo build --release -p
//! shutter`, run on a temporary data directory and a free port with rate limits off.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// Feed fan-out threshold for the benchmark server: above every follower count seeded, so
/// the `fanout` scenario measures the push path (authors at or over the threshold are pulled).
pub const FANOUT_THRESHOLD: u64 = 200_000;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds the server binary in release mode (`cargo build --release -p shutter`) and returns
/// its path. Cargo waits for any other build holding the target directory's lock.
pub async fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: building the server (cargo build --release -p shutter)");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "shutter"])
        .current_dir(root)
        .status()
        .await
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p shutter failed ({status})");
    }
    binary(root)
}

/// The already-built release binary.
pub fn binary(root: &Path) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("shutter");
    if !bin.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p shutter` or drop --no-build",
            bin.display()
        );
    }
    Ok(bin)
}

/// A free TCP port on the loopback interface (bound, read and released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// How the server is configured for a run.
pub struct ServerConfig {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    pub log_file: PathBuf,
    /// `RUST_LOG` for the server; `None` leaves its default.
    pub log_filter: Option<String>,
    /// Extra environment (the S3 store's `SHUTTER_STORAGE__*` with `--storage s3`,
    /// `SHUTTER_DATABASE__URL` with `--database`).
    pub env: Vec<(&'static str, String)>,
}

impl ServerConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("SHUTTER_DATA_DIR", &self.data_dir)
            .env("SHUTTER_SERVER__LISTEN", self.addr().to_string())
            .env("SHUTTER_RATE_LIMITS__ENABLED", "false")
            .env(
                "SHUTTER_FEED__FANOUT_THRESHOLD",
                FANOUT_THRESHOLD.to_string(),
            )
            .env("SHUTTER_LOG__FORMAT", "json")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            // A config file in the caller's working directory must not leak in.
            .current_dir(&self.data_dir)
            .stdin(Stdio::null());
        match &self.log_filter {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd
    }

    /// `shutter migrate`: creates the database with the current schema, so it can be seeded
    /// before the server starts.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let out = self
            .command(&["migrate"])
            .output()
            .await
            .context("running shutter migrate")?;
        if !out.status.success() {
            bail!(
                "shutter migrate failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `shutter serve`, logging to `log_file`; returns once `/healthz` answers.
    pub async fn start(&self) -> anyhow::Result<Server> {
        let log = std::fs::File::create(&self.log_file)
            .with_context(|| format!("creating {}", self.log_file.display()))?;
        let log_err = log.try_clone()?;
        let child = self
            .command(&["serve"])
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let mut server = Server { child };
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base_url());
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited during start-up ({status}); see {}",
                    self.log_file.display()
                );
            }
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the server did not answer /healthz within 60 s; see {}",
                    self.log_file.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the server has exited")
    }

    /// Stops the server: SIGTERM (graceful), then a kill after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.child.kill().await.context("killing the server")?;
        Ok(())
    }
}
