//! Shutter on S3 (`storage.backend = "s3"`), whatever storage the rest of the suite runs on:
//! an S3 outage is a 503 with `Retry-After` and a failing `/readyz`, never a 500, and nothing
//! acknowledged is lost when the store comes back; `shutter check` tries the bucket; a stock
//! S3 SDK reads the bucket Shutter wrote; a bad `storage.s3.*` key exits 2 naming it.
//!
//! The tests on the shared S3 server need `SHUTTER_TEST_S3_ENDPOINT`,
//! `SHUTTER_TEST_S3_ACCESS_KEY` and `SHUTTER_TEST_S3_SECRET_KEY` (`eval "$(scripts/s3-server.sh
//! start)"`); the outage test runs its own `s3s-fs` (`scripts/s3-server.sh install`), and the
//! SDK test needs `python3` with boto3. Without them these tests fail; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shutter_core::config::{S3StorageConfig, StorageBackend};

use crate::backend::{Database, Storage};
use crate::helpers::*;
use crate::upload_helpers::*;

const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// S3 servers and buckets

/// Where an S3 server is and the keys it takes.
#[derive(Clone, Debug)]
struct S3Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

impl S3Server {
    /// The shared test server named by `SHUTTER_TEST_S3_*`; panics when they are not set.
    fn shared() -> S3Server {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| {
                    panic!(
                        "{name} is not set: the S3 API tests need an S3 server \
                         (eval \"$(scripts/s3-server.sh start)\"; .ci/run starts s3s-fs)"
                    )
                })
        };
        S3Server {
            endpoint: var("SHUTTER_TEST_S3_ENDPOINT"),
            access_key: var("SHUTTER_TEST_S3_ACCESS_KEY"),
            secret_key: var("SHUTTER_TEST_S3_SECRET_KEY"),
        }
    }

    fn config(&self, bucket: &str) -> S3StorageConfig {
        S3StorageConfig {
            endpoint: Some(self.endpoint.clone()),
            bucket: Some(bucket.to_owned()),
            region: Some(REGION.into()),
            access_key: Some(self.access_key.clone()),
            secret_key: Some(self.secret_key.clone()),
            session_token: None,
            path_style: true,
        }
    }

    /// A new, empty bucket on this server.
    async fn fresh_bucket(&self) -> String {
        let bucket = unique_bucket_name();
        shutter_blob::S3BlobStore::new(&self.config(&bucket))
            .expect("the S3 store configures")
            .create_bucket()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket} on {}: {e:#}", self.endpoint));
        bucket
    }

    /// The environment of a `shutter` process storing in `bucket` on this server.
    fn envs(&self, bucket: &str) -> Vec<(String, String)> {
        [
            ("SHUTTER_STORAGE__BACKEND", "s3"),
            ("SHUTTER_STORAGE__S3__ENDPOINT", &self.endpoint),
            ("SHUTTER_STORAGE__S3__BUCKET", bucket),
            ("SHUTTER_STORAGE__S3__REGION", REGION),
            ("SHUTTER_STORAGE__S3__ACCESS_KEY", &self.access_key),
            ("SHUTTER_STORAGE__S3__SECRET_KEY", &self.secret_key),
            ("SHUTTER_STORAGE__S3__PATH_STYLE", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// A bucket name no other test uses (S3 names: 3..63 of `[a-z0-9-]`).
fn unique_bucket_name() -> String {
    format!("shutter-api-{}", shutter_core::Id::new().as_uuid().simple())
}

fn as_pairs(envs: &[(String, String)]) -> Vec<(&str, &str)> {
    envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The S3 server `scripts/s3-server.sh` runs (s3s-fs, `tools/s3s-fs-nodelay`): on `PATH` or
/// in `~/.cargo/bin`.
fn s3s_fs_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("s3s-fs-nodelay"))
            .find(|p| p.is_file())
    });
    let in_cargo = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo/bin/s3s-fs-nodelay"))
        .filter(|p| p.is_file());
    on_path.or(in_cargo).expect(
        "s3s-fs is needed for the S3 outage test (`scripts/s3-server.sh install` installs it)",
    )
}

/// An `s3s-fs` of this test's own, which it may stop and start again on the same directory
/// and port.
struct PrivateS3 {
    server: S3Server,
    port: u16,
    root: PathBuf,
    log: PathBuf,
    child: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl PrivateS3 {
    /// Starts a server with one (empty) bucket.
    async fn start(bucket: &str) -> PrivateS3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("s3");
        std::fs::create_dir_all(root.join(bucket)).expect("the bucket's directory");
        let port = free_port();
        let mut s3 = PrivateS3 {
            server: S3Server {
                endpoint: format!("http://127.0.0.1:{port}"),
                access_key: "outage-test".into(),
                secret_key: "outage-test-secret-key".into(),
            },
            port,
            root,
            log: dir.path().join("s3s-fs.log"),
            child: None,
            _dir: dir,
        };
        s3.run().await;
        s3
    }

    /// Starts the process and waits until it accepts connections. Binding the port it had
    /// before may take a few tries while the old sockets close.
    async fn run(&mut self) {
        assert!(self.child.is_none(), "s3s-fs is already running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("the s3s-fs log");
            let mut child = tokio::process::Command::new(s3s_fs_binary())
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", &self.server.access_key])
                .args(["--secret-key", &self.server.secret_key])
                .arg(&self.root)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .expect("s3s-fs starts");
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
                {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().expect("s3s-fs status").is_some() {
                    break; // most likely the port is not free again yet: try again
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "s3s-fs did not answer on port {}: {}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "s3s-fs could not start on port {}: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL: the store is gone at once, as when its machine fails.
    async fn stop(&mut self) {
        let mut child = self.child.take().expect("s3s-fs is running");
        child.start_kill().expect("kill s3s-fs");
        child.wait().await.expect("s3s-fs exits");
    }
}

// ---------------------------------------------------------------------------------------------
// Requests to a `shutter serve` child

/// A user's client of a child server.
struct Client<'a> {
    server: &'a ChildServer,
    http: reqwest::Client,
    token: String,
}

impl Client<'_> {
    async fn file(&self, id: &str) -> Value {
        let resp = self
            .http
            .get(self.server.url(&format!("/v1/files/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET file");
        expect_status(resp, StatusCode::OK).await
    }

    async fn wait_ready(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let file = self.file(id).await;
            if file["status"] == "ready" || file["status"] == "failed" {
                assert_eq!(file["status"], "ready", "{file}");
                return file;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "file {id} is not ready after a minute: {file}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /v1/files`, which must answer 201: `(file, ticket)`.
    async fn create_file(&self, filename: &str, size: usize) -> (Value, Value) {
        let resp = self
            .http
            .post(self.server.url("/v1/files"))
            .bearer_auth(&self.token)
            .json(&file_request(filename, "application/octet-stream", size))
            .send()
            .await
            .expect("POST /v1/files");
        let created = expect_status(resp, StatusCode::CREATED).await;
        (created["file"].clone(), created["upload"].clone())
    }

    /// The `PUT` of a ticket's URL (the bucket's, on S3) with its headers and no
    /// Authorization; `None` when the bucket cannot be reached at all.
    async fn put_to_bucket(&self, ticket: &Value, bytes: Vec<u8>) -> Option<reqwest::Response> {
        ticket_request_on(&self.http, ticket)
            .body(bytes)
            .send()
            .await
            .ok()
    }

    /// `POST /v1/files/{id}/complete`, which checks what the ticket uploaded.
    async fn complete(&self, id: &str) -> reqwest::Response {
        self.http
            .post(self.server.url(&format!("/v1/files/{id}/complete")))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .expect("complete")
    }

    /// The ticket's bytes to the bucket, then `complete`, whose answer is returned.
    async fn put_ticket(&self, ticket: &Value, bytes: Vec<u8>) -> reqwest::Response {
        let put = self
            .put_to_bucket(ticket, bytes)
            .await
            .expect("the bucket answers");
        assert!(
            put.status().is_success(),
            "the bucket took the bytes: {}",
            put.status()
        );
        self.complete(ticket["file_id"].as_str().expect("file_id"))
            .await
    }

    /// Creates a file and uploads `bytes` with a PUT; returns the ready file.
    async fn upload_put(&self, filename: &str, bytes: &[u8]) -> Value {
        let (file, ticket) = self.create_file(filename, bytes.len()).await;
        let resp = self.put_ticket(&ticket, bytes.to_vec()).await;
        let done = expect_status(resp, StatusCode::OK).await;
        assert_eq!(done["file"]["sha256"], sha256_hex(bytes), "{done}");
        self.wait_ready(&id_of(&file)).await
    }

    async fn tus_patch(&self, url: &str, offset: usize, bytes: &[u8]) -> reqwest::Response {
        tus_patch_on(&self.http, url, &self.token, offset, bytes.to_vec())
            .send()
            .await
            .expect("tus PATCH")
    }

    async fn tus_offset(&self, url: &str) -> u64 {
        let resp = self
            .http
            .head(url)
            .bearer_auth(&self.token)
            .header("Tus-Resumable", TUS)
            .send()
            .await
            .expect("tus HEAD");
        assert_eq!(resp.status(), StatusCode::OK, "tus HEAD {url}");
        header_u64(&resp, "upload-offset")
    }

    async fn content(&self, id: &str) -> reqwest::Response {
        self.http
            .get(self.server.url(&format!("/v1/files/{id}/content")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET content")
    }

    async fn download(&self, id: &str) -> Vec<u8> {
        download_on(&self.http, &self.server.base, Some(&self.token), id).await
    }
}

/// Downloaded bytes are the uploaded ones (said by length and digest, not by dumping them).
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(
        (got.len(), sha256_hex(got)),
        (want.len(), sha256_hex(want)),
        "{what}: the download is the upload, byte for byte"
    );
}

/// `/readyz`: `(status, body, Retry-After)`.
async fn readyz(server: &ChildServer) -> (StatusCode, Value, Option<String>) {
    let resp = http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    let status = resp.status();
    let retry_after = header(&resp, "retry-after");
    let body = resp.json().await.expect("a JSON readiness report");
    (status, body, retry_after)
}

/// Polls `/readyz` until it answers `want` (panics after 30 s); returns the answer.
async fn wait_readyz(server: &ChildServer, want: StatusCode) -> (Value, Option<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, retry_after) = readyz(server).await;
        if status == want {
            return (body, retry_after);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not answer {want} within 30 s; last {status}: {body}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 503 `service_unavailable` problem with a `Retry-After` of at least a second.
async fn assert_unavailable(resp: reqwest::Response, what: &str) {
    let retry_after = header(&resp, "retry-after");
    assert_ne!(
        resp.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: never a 500"
    );
    assert_problem(resp, 503, "service_unavailable").await;
    let secs: u64 = retry_after
        .unwrap_or_else(|| panic!("{what}: a 503 says when to retry (Retry-After)"))
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After is a number of seconds"));
    assert!(secs >= 1, "{what}: Retry-After {secs}");
}

// ---------------------------------------------------------------------------------------------
// a. The S3 server goes away and comes back

#[tokio::test]
async fn an_s3_outage_is_a_503_with_retry_after_and_nothing_stored_is_lost() {
    let bucket = unique_bucket_name();
    let mut s3 = PrivateS3::start(&bucket).await;
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let envs = s3.server.envs(&bucket);
    let server = ChildServer::start(data.path(), free_port(), &as_pairs(&envs)).await;
    let (body, _) = wait_readyz(&server, StatusCode::OK).await;
    assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");

    let http = http_client();
    let token = register_on(&http, &server.base, "outage").await;
    let client = Client {
        server: &server,
        http,
        token,
    };

    // Before the outage: a file by PUT (several chunks and a multipart commit on S3), a
    // file by tus, and a tus upload half way.
    let big = pseudo_random(shutter_blob::PART_SIZE + 300_000, 1);
    let by_put = client.upload_put("before.bin", &big).await;
    let small = pseudo_random(70_000, 2);
    let metadata = tus_metadata(&[
        ("filename", "tus.bin"),
        ("filetype", "application/octet-stream"),
    ]);
    let (tus_url, tus_id) = tus_create_on(
        &client.http,
        &server.base,
        &client.token,
        small.len(),
        &metadata,
    )
    .await;
    let resp = client.tus_patch(&tus_url, 0, &small).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{}", server.log());
    let by_tus = client.wait_ready(&tus_id).await;
    let halves = pseudo_random(100_000, 3);
    let (half_url, half_id) = tus_create_on(
        &client.http,
        &server.base,
        &client.token,
        halves.len(),
        &metadata,
    )
    .await;
    let resp = client.tus_patch(&half_url, 0, &halves[..50_000]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{}", server.log());
    let (outage_file, outage_ticket) = client.create_file("during.bin", 20_000).await;
    let during = pseudo_random(20_000, 4);
    let put = client.put_to_bucket(&outage_ticket, during.clone()).await;
    assert!(
        put.is_some_and(|r| r.status().is_success()),
        "the bucket took the bytes"
    );

    s3.stop().await;

    // Not ready, and the report names the storage, not the database.
    let (body, retry_after) = wait_readyz(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["checks"]["storage"]["status"], "error", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    assert!(retry_after.is_some(), "/readyz 503 has Retry-After");

    // Uploads are refused as unavailable, to be retried: never a 500.
    // A ticket's PUT goes to the bucket, which does not answer; completing it here is 503.
    assert!(
        client
            .put_to_bucket(&outage_ticket, during.clone())
            .await
            .is_none(),
        "the bucket is down"
    );
    let resp = client.complete(&id_of(&outage_file)).await;
    assert_unavailable(resp, "complete of an upload ticket").await;
    let resp = client.tus_patch(&half_url, 50_000, &halves[50_000..]).await;
    assert_unavailable(resp, "tus PATCH").await;
    let (fresh_url, fresh_id) =
        tus_create_on(&client.http, &server.base, &client.token, 10_000, &metadata).await;
    let fresh = pseudo_random(10_000, 5);
    let resp = client.tus_patch(&fresh_url, 0, &fresh).await;
    assert_unavailable(resp, "tus PATCH of a new upload").await;
    // A private download redirects to the bucket without asking it: Shutter answers the
    // same; the bucket, down, does not.
    let resp = client.content(&id_of(&by_put)).await;
    assert_eq!(
        resp.status(),
        StatusCode::FOUND,
        "a private download redirects"
    );
    // What the database holds is still served.
    let file = client.file(&id_of(&by_put)).await;
    assert_eq!(file["status"], "ready", "{file}");

    // The store comes back on the same directory and port; Shutter recovers by itself.
    s3.run().await;
    let (body, _) = wait_readyz(&server, StatusCode::OK).await;
    assert_eq!(body["checks"]["storage"]["status"], "ok", "{body}");

    assert_same_bytes(
        &client.download(&id_of(&by_put)).await,
        &big,
        "the PUT before",
    );
    assert_same_bytes(
        &client.download(&id_of(&by_tus)).await,
        &small,
        "the tus upload before",
    );

    // The refused requests can simply be retried: the same ticket, the same tus upload from
    // the offset it had before the outage.
    let resp = client.complete(&id_of(&outage_file)).await;
    expect_status(resp, StatusCode::OK).await;
    client.wait_ready(&id_of(&outage_file)).await;
    assert_same_bytes(
        &client.download(&id_of(&outage_file)).await,
        &during,
        "the PUT retried",
    );

    assert_eq!(client.tus_offset(&half_url).await, 50_000);
    let resp = client.tus_patch(&half_url, 50_000, &halves[50_000..]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{}", server.log());
    client.wait_ready(&half_id).await;
    assert_same_bytes(
        &client.download(&half_id).await,
        &halves,
        "the tus upload resumed",
    );

    assert_eq!(client.tus_offset(&fresh_url).await, 0);
    let resp = client.tus_patch(&fresh_url, 0, &fresh).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{}", server.log());
    client.wait_ready(&fresh_id).await;
    assert_same_bytes(
        &client.download(&fresh_id).await,
        &fresh,
        "the tus upload retried",
    );

    assert!(
        !server.log().contains("panicked"),
        "the server did not panic: {}",
        server.log()
    );
}

// ---------------------------------------------------------------------------------------------
// b. `shutter check` tries the bucket

/// `shutter <args>` with a clean environment: no `SHUTTER_*` or `AWS_*` variable of the
/// run's, so only `envs` configure the storage.
async fn run_clean(data_dir: &Path, args: &[&str], envs: &[(String, String)]) -> Output {
    let mut cmd = shutter_command(data_dir, &as_pairs(envs));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") && !envs.iter().any(|(k, _)| *k == key) {
            cmd.env_remove(key);
        }
    }
    cmd.args(args);
    let child = cmd.spawn().expect("the shutter binary starts");
    match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
        Ok(out) => out.expect("shutter output"),
        Err(_) => panic!("`shutter {}` did not finish within 60 s", args.join(" ")),
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `storage` line of `shutter check`'s report.
fn storage_line(out: &Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.starts_with("storage "))
        .unwrap_or_else(|| panic!("a storage line in: {}", stdout(out)))
        .to_owned()
}

#[tokio::test]
async fn check_reports_a_reachable_writable_bucket() {
    let s3 = S3Server::shared();
    let bucket = s3.fresh_bucket().await;
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let out = run_clean(data.path(), &["check"], &s3.envs(&bucket)).await;
    assert_success(&out, "shutter check on S3");
    let line = storage_line(&out);
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>().join(" "),
        format!(
            "storage s3 bucket {bucket} at {} (reachable, writable)",
            s3.endpoint
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("configuration ok"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn check_fails_naming_a_bucket_that_does_not_exist() {
    let s3 = S3Server::shared();
    let bucket = unique_bucket_name(); // never created
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let out = run_clean(data.path(), &["check"], &s3.envs(&bucket)).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing bucket is a failure (1), not a configuration error (2)\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains(&bucket), "stderr names the bucket: {err}");
    assert!(err.contains("storage"), "stderr names the storage: {err}");
    assert!(
        err.contains("NoSuchBucket"),
        "stderr gives the cause: {err}"
    );
    assert!(
        !stdout(&out).contains("configuration ok"),
        "no success report: {}",
        stdout(&out)
    );
}

#[tokio::test]
async fn check_fails_naming_an_s3_endpoint_that_does_not_answer() {
    let s3 = S3Server {
        endpoint: format!("http://127.0.0.1:{}", free_port()), // nothing listens there
        ..S3Server::shared()
    };
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let out = run_clean(data.path(), &["check"], &s3.envs("nowhere")).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&s3.endpoint),
        "stderr names the endpoint: {err}"
    );
    assert!(err.contains("nowhere"), "stderr names the bucket: {err}");
    assert!(
        !err.contains("X-Amz-Signature"),
        "no presigned URL in messages: {err}"
    );
}

#[tokio::test]
async fn check_reports_the_local_storage_directory() {
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let out = run_clean(data.path(), &["check"], &[]).await;
    assert_success(&out, "shutter check on local storage");
    let line = storage_line(&out);
    let blobs = data.path().join("blobs");
    assert!(
        line.contains(&format!("local directory {} (writable)", blobs.display())),
        "{line}"
    );

    // A storage path that cannot be a directory fails the check, naming it.
    let file = data.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let envs = vec![(
        "SHUTTER_STORAGE__LOCAL__PATH".to_owned(),
        file.display().to_string(),
    )];
    let out = run_clean(data.path(), &["check"], &envs).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&file.display().to_string()),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// c. A stock S3 SDK reads what Shutter stored

/// Runs `fixtures/s3_list.py` (boto3) on `bucket`; returns its JSON line.
async fn boto3_listing(s3: &S3Server, bucket: &str) -> Value {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .await;
    match probe {
        Err(e) => panic!("python3 is needed for the boto3 test ({e})"),
        Ok(out) if !out.status.success() => panic!(
            "boto3 is not importable; `python3 -m pip install boto3` (CI installs it in .ci/run): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/s3_list.py");
    let mut cmd = tokio::process::Command::new("python3");
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    let child = cmd
        .arg(&script)
        .args([&s3.endpoint, &s3.access_key, &s3.secret_key, bucket])
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the boto3 script finished within 60 s")
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the boto3 script failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the boto3 script printed no JSON ({e}): {text}"))
}

#[tokio::test]
async fn a_stock_s3_sdk_reads_the_bucket_shutter_writes() {
    let s3 = S3Server::shared();
    let bucket = s3.fresh_bucket().await;
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let mut config = test_config(data.path());
    config.storage.backend = StorageBackend::S3;
    config.storage.s3 = s3.config(&bucket);
    let app = start(config, data).await;
    let (_, token) = user(&app, "sdk").await;

    let photo_bytes = testdata("photos/kleiber_1080x1080.jpg");
    let photo = upload(&app, &token, "kleiber.jpg", "image/jpeg", &photo_bytes).await;
    // More than a part, so the original is assembled from several chunks.
    let plain_bytes = pseudo_random(shutter_blob::PART_SIZE + 123_457, 7);
    let plain = upload(
        &app,
        &token,
        "data.bin",
        "application/octet-stream",
        &plain_bytes,
    )
    .await;
    let photo = wait_ready(&app, &token, &id_of(&photo)).await;
    let plain = wait_ready(&app, &token, &id_of(&plain)).await;
    assert_eq!(photo["sha256"], sha256_hex(&photo_bytes), "{photo}");
    assert_eq!(plain["sha256"], sha256_hex(&plain_bytes), "{plain}");

    let listing = boto3_listing(&s3, &bucket).await;
    let objects: std::collections::BTreeMap<String, u64> = listing["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            (
                o["key"].as_str().expect("key").to_owned(),
                o["size"].as_u64().expect("size"),
            )
        })
        .collect();
    let (photo_id, plain_id) = (id_of(&photo), id_of(&plain));
    let expected: std::collections::BTreeSet<String> = [
        format!("files/{photo_id}/original"),
        format!("files/{photo_id}/variants/thumb"),
        format!("files/{photo_id}/variants/w640"),
        format!("files/{photo_id}/variants/w1080"),
        format!("files/{plain_id}/original"),
    ]
    .into_iter()
    .collect();
    let keys: std::collections::BTreeSet<String> = objects.keys().cloned().collect();
    assert_eq!(keys, expected, "the bucket's layout: {listing}");
    assert!(
        keys.iter().all(|k| !k.starts_with("uploads/")),
        "nothing is left of the uploads in progress: {listing}"
    );
    assert_eq!(
        objects[&format!("files/{photo_id}/original")],
        photo_bytes.len() as u64
    );
    assert_eq!(
        objects[&format!("files/{plain_id}/original")],
        plain_bytes.len() as u64
    );
    for variant in ["thumb", "w640", "w1080"] {
        assert!(
            objects[&format!("files/{photo_id}/variants/{variant}")] > 0,
            "{variant}: {listing}"
        );
    }
    assert_eq!(
        listing["sha256"],
        json!({
            format!("files/{photo_id}/original"): photo["sha256"],
            format!("files/{plain_id}/original"): plain["sha256"],
        })
    );
}

// ---------------------------------------------------------------------------------------------
// d. A bad S3 configuration exits 2, naming the key

/// Asserts exit code 2 and stderr naming `key`.
fn assert_config_error(out: &Output, key: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid configuration exits with 2; got {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    assert!(
        stderr(out).contains(key),
        "stderr names {key}: {}",
        stderr(out)
    );
}

#[tokio::test]
async fn an_s3_backend_without_a_bucket_exits_2_naming_the_key() {
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let envs: Vec<(String, String)> = [
        ("SHUTTER_STORAGE__BACKEND", "s3"),
        ("SHUTTER_STORAGE__S3__ENDPOINT", "http://127.0.0.1:9"),
        ("SHUTTER_STORAGE__S3__ACCESS_KEY", "k"),
        ("SHUTTER_STORAGE__S3__SECRET_KEY", "s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for command in ["check", "serve"] {
        let out = run_clean(data.path(), &[command], &envs).await;
        assert_config_error(&out, "storage.s3.bucket");
    }
}

#[tokio::test]
async fn an_s3_endpoint_that_is_not_http_exits_2_naming_the_key() {
    let data = crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await;
    let mut envs = S3Server {
        endpoint: "ftp://x".into(),
        access_key: "k".into(),
        secret_key: "s".into(),
    }
    .envs("some-bucket");
    for command in ["check", "serve"] {
        let out = run_clean(data.path(), &[command], &envs).await;
        assert_config_error(&out, "storage.s3.endpoint");
        assert!(stderr(&out).contains("ftp://x"), "{}", stderr(&out));
    }
    // The same through the AWS variable every S3 tool reads.
    envs.retain(|(k, _)| k != "SHUTTER_STORAGE__S3__ENDPOINT");
    envs.push(("AWS_ENDPOINT_URL".into(), "ftp://x".into()));
    let out = run_clean(data.path(), &["check"], &envs).await;
    assert_config_error(&out, "storage.s3.endpoint");
}
