//! The server in process, the CLI as a child process, and small HTTP helpers for checking
//! what the server holds.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use shutter::startup::Application;
use shutter_core::config::Config;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::backend;

pub const PASSWORD: &str = "correct horse battery staple";

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shutter-cli");

/// A run of the CLI taking longer than this has hung.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The photos of the shared test data (`../shared/testdata` from the workspace root).
pub fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(path)
}

pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub http: reqwest::Client,
    _data: backend::TestDataDir,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_server() -> Result<Server> {
    start_server_with(|_| {}).await
}

/// The real application on port 0 with a fresh data directory on the run's database and blob
/// store (SQLite and a local directory unless the run asks for PostgreSQL or S3).
pub async fn start_server_with(configure: impl FnOnce(&mut Config)) -> Result<Server> {
    let data = backend::data_dir().await;
    let mut config = backend::test_config(data.path());
    configure(&mut config);
    if config.database.url.is_none() {
        config.database.url = backend::database_url_for(&config.data_dir);
    }
    backend::configure_storage(&mut config);
    let app = Application::build(config).await?;
    let port = app.port();
    let task = tokio::spawn(async move {
        if let Err(err) = app.run_until_stopped().await {
            eprintln!("server stopped with an error: {err:#}");
        }
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(Server {
        url: format!("http://127.0.0.1:{port}"),
        http,
        _data: data,
        task,
    })
}

/// A server, and the CLI with `username` registered on it, with that user's token for
/// checking what the server holds.
pub async fn signed_up(username: &str) -> Result<(Server, Cli, String)> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register(username).await?;
    let token = server.token(username).await?;
    Ok((server, cli, token))
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// An access token of `username` (logging in over HTTP, beside the CLI's session).
    pub async fn token(&self, username: &str) -> Result<String> {
        let body: Value = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token")
    }

    /// `GET path` with the token; the status and the JSON body (null when there is none).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Waits until `GET /v1/files/{id}` says `status` (failing on `failed`).
    pub async fn wait_file_status(&self, id: &str, token: &str, status: &str) -> Result<Value> {
        let path = format!("/v1/files/{id}");
        for _ in 0..600 {
            let (code, file) = self.get(&path, Some(token)).await?;
            if code == 200 && file["status"] == status {
                return Ok(file);
            }
            if file["status"] == "failed" {
                bail!("file {id} failed: {file}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("file {id} never became {status}")
    }
}

/// What a run of the CLI did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.stdout).with_context(|| {
            format!(
                "stdout is not JSON: {:?} (stderr: {})",
                self.stdout(),
                self.stderr
            )
        })
    }

    /// This run, if it exited 0.
    pub fn ok(self) -> Result<Run> {
        if self.code != 0 {
            bail!(
                "shutter-cli exited {}\nstdout: {}\nstderr: {}",
                self.code,
                self.stdout(),
                self.stderr
            );
        }
        Ok(self)
    }

    /// The `code` of the `{"error": problem}` a `--json` run printed.
    pub fn error_code(&self) -> Result<String> {
        let body = self.json()?;
        body["error"]["code"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no error code in {body}"))
    }
}

/// The CLI with a home of its own: `config/` (its `--config-dir`) and `work/` (its current
/// directory).
pub struct Cli {
    home: TempDir,
    server: String,
}

impl Cli {
    pub fn new(server: &Server) -> Result<Cli> {
        let home = tempfile::tempdir()?;
        std::fs::create_dir(home.path().join("work"))?;
        Ok(Cli {
            home,
            server: server.url.clone(),
        })
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.home.path().join("work")
    }

    /// A directory for test files that the CLI does not write to.
    pub fn source_dir(&self) -> Result<PathBuf> {
        let dir = self.home.path().join("src");
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    pub fn credentials(&self) -> Result<Value> {
        let text = std::fs::read_to_string(self.config_dir().join("credentials.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The command with `--server` and `--config-dir` set, and nothing from the environment
    /// of the test run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.command_without_server(args);
        command.arg("--server").arg(&self.server);
        command
    }

    /// The command with only `--config-dir`: the server comes from the stored login.
    pub fn command_without_server(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--config-dir")
            .arg(self.config_dir())
            .current_dir(self.work_dir())
            .env_remove("SHUTTER_URL")
            .env_remove("SHUTTER_PASSWORD")
            .env_remove("SHUTTER_CLI_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Result<Run> {
        finish(self.command(args), None).await
    }

    pub async fn run_with_stdin(&self, args: &[&str], input: &str) -> Result<Run> {
        finish(self.command(args), Some(input)).await
    }

    /// `--json` + args, which must succeed; the JSON it printed.
    pub async fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).await?.ok()?.json()
    }

    /// Registers `username` with [`PASSWORD`] through the CLI (which logs it in).
    pub async fn register(&self, username: &str) -> Result<Value> {
        let run = self
            .run_with_stdin(
                &[
                    "--json",
                    "register",
                    "--username",
                    username,
                    "--password-stdin",
                ],
                &format!("{PASSWORD}\n"),
            )
            .await?
            .ok()?;
        run.json()
    }
}

/// Runs the command to its end (within [`RUN_LIMIT`]), feeding it `input`.
pub async fn finish(mut command: Command, input: Option<&str>) -> Result<Run> {
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().context("starting shutter-cli")?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
    }
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .context("shutter-cli hung")??;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// `len` bytes that do not compress or repeat (xorshift), so a resumed upload that sends a
/// wrong range cannot match by chance.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(unix)]
pub fn mode(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}
