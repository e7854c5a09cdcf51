//! Shared helpers of the file-upload tests (SPEC 4): test data, digests, creating files and
//! sending their bytes, reading them back, tus requests, and a `shutter serve` child process
//! for the tests that must measure or kill the server.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::Md5;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Test data and digests

/// `shared/testdata/<rel>` (the project's shared test data, beside the checkout).
pub fn testdata_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

pub fn testdata(rel: &str) -> Vec<u8> {
    let path = testdata_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// Deterministic bytes that look like nothing in particular (xorshift64*).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `Upload-Checksum` / tus metadata values are base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// Files over the API

/// The body of `POST /v1/files` for `bytes` (declared size = their length).
pub fn file_request(filename: &str, content_type: &str, size: usize) -> Value {
    json!({"filename": filename, "size": size, "content_type": content_type})
}

/// `POST /v1/files` that must answer 201; returns `(file, upload_ticket)`.
pub async fn create_file(app: &TestApp, token: &str, body: &Value) -> (Value, Value) {
    let resp = app.post_json("/v1/files", Some(token), body).await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    (created["file"].clone(), created["upload"].clone())
}

/// `PUT` the ticket's URL with its headers and no Authorization. On S3 the ticket points at
/// the bucket: once the bucket takes the bytes, `complete` (as the file's owner) checks them,
/// and its answer is returned, so a test sees what a local `PUT` answers.
pub async fn put_ticket(app: &TestApp, ticket: &Value, bytes: Vec<u8>) -> Response {
    send_to_ticket(&app.client, &app.address, ticket, bytes).await
}

/// Whether a ticket sends the bytes to the bucket itself (S3) rather than to Shutter at `base`.
pub fn is_direct_ticket(base: &str, ticket: &Value) -> bool {
    !ticket["url"]
        .as_str()
        .expect("ticket url")
        .starts_with(base)
}

/// Who created each ticket's file (file id → access token), recorded from the answers of
/// `POST /v1/files` and `POST /v1/posts` by [`note_ticket_owners`]: on S3, sending a ticket's
/// bytes ends with the owner's `complete`.
static TICKET_OWNERS: std::sync::Mutex<Option<std::collections::HashMap<String, String>>> =
    std::sync::Mutex::new(None);

/// Records the owner of the tickets in a `POST /v1/files` or `POST /v1/posts` answer, giving
/// the answer back unchanged (its body read and put back).
pub async fn note_ticket_owners(path: &str, token: Option<&str>, resp: Response) -> Response {
    let (Some(token), true) = (token, path == "/v1/files" || path == "/v1/posts") else {
        return resp;
    };
    if resp.status() != StatusCode::CREATED {
        return resp;
    }
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
        let tickets = std::iter::once(&body["upload"])
            .chain(body["uploads"].as_array().into_iter().flatten());
        let mut owners = TICKET_OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        let owners = owners.get_or_insert_with(Default::default);
        for ticket in tickets {
            if let Some(id) = ticket["file_id"].as_str() {
                owners.insert(id.to_owned(), token.to_owned());
            }
        }
    }
    let mut rebuilt = axum::http::Response::new(bytes);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    Response::from(rebuilt)
}

/// `PUT` of `bytes` to a ticket (its headers, no Authorization); on a ticket of the bucket,
/// followed by the owner's `complete`, whose answer is returned (see [`put_ticket`]).
pub async fn send_to_ticket(
    client: &reqwest::Client,
    base: &str,
    ticket: &Value,
    bytes: Vec<u8>,
) -> Response {
    let resp = ticket_request_on(client, ticket)
        .body(bytes)
        .send()
        .await
        .expect("PUT");
    if !is_direct_ticket(base, ticket) || !resp.status().is_success() {
        return resp;
    }
    let id = ticket["file_id"].as_str().expect("file_id");
    let token = TICKET_OWNERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|owners| owners.get(id).cloned())
        .unwrap_or_else(|| {
            panic!("no owner recorded for the ticket of {id}: create files with post_json")
        });
    client
        .post(format!("{base}/v1/files/{id}/complete"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("complete")
}

/// A download answer, with the redirect to the bucket followed (on S3 a private file's bytes
/// come from a presigned URL of the bucket).
pub async fn follow_to_bucket(client: &reqwest::Client, resp: Response) -> Response {
    if resp.status() != StatusCode::FOUND {
        return resp;
    }
    let location = header(&resp, "location").expect("a redirect's Location");
    client
        .get(location)
        .send()
        .await
        .expect("GET from the bucket")
}

/// A `PUT` to the ticket's URL carrying the ticket's headers, without a body yet.
pub fn ticket_request(app: &TestApp, ticket: &Value) -> RequestBuilder {
    ticket_request_on(&app.client, ticket)
}

/// [`ticket_request`] with any client (for servers without a `TestApp`).
pub fn ticket_request_on(client: &reqwest::Client, ticket: &Value) -> RequestBuilder {
    assert_eq!(ticket["method"], "PUT", "{ticket}");
    let url = ticket["url"].as_str().expect("ticket url");
    let mut req = client.put(url);
    for (name, value) in ticket["headers"].as_object().expect("ticket headers") {
        req = req.header(name.as_str(), value.as_str().expect("header value"));
    }
    req
}

/// Creates a file for `bytes` and uploads them with the ticket; asserts 200 and `ready`.
/// Returns the file from the PUT's answer.
pub async fn upload(
    app: &TestApp,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Value {
    upload_with(
        app,
        token,
        file_request(filename, content_type, bytes.len()),
        bytes,
    )
    .await
}

/// Like [`upload`] with a full creation body.
pub async fn upload_with(app: &TestApp, token: &str, body: Value, bytes: &[u8]) -> Value {
    let (file, ticket) = create_file(app, token, &body).await;
    let resp = put_ticket(app, &ticket, bytes.to_vec()).await;
    let done = expect_status(resp, StatusCode::OK).await;
    let done = done["file"].clone();
    assert_eq!(done["id"], file["id"], "{done}");
    assert_eq!(done["sha256"], sha256_hex(bytes), "{done}");
    settled(app, token, &done).await
}

/// A file that a PUT (or the last tus PATCH) just completed: SPEC 4 answers `processing` or
/// `ready`; a processing file (an image getting its variants) is waited for until `ready`.
/// Returns the ready file.
pub async fn settled(app: &TestApp, token: &str, file: &Value) -> Value {
    let status = file["status"].as_str().unwrap_or_default();
    assert!(
        status == "ready" || status == "processing",
        "a completed upload is processing or ready: {file}"
    );
    if status == "ready" {
        return file.clone();
    }
    wait_ready(app, token, &id_of(file)).await
}

/// Polls until the file is `ready` (panics if it fails or takes over a minute).
pub async fn wait_ready(app: &TestApp, token: &str, id: &str) -> Value {
    let file = wait_for_file(app, token, id, Duration::from_secs(60), |f| {
        f["status"] == "ready" || f["status"] == "failed"
    })
    .await;
    assert_eq!(file["status"], "ready", "{file}");
    file
}

/// `GET /v1/files/{id}` that must answer 200.
pub async fn file_of(app: &TestApp, token: Option<&str>, id: &str) -> Value {
    let resp = app.get(&format!("/v1/files/{id}"), token).await;
    expect_status(resp, StatusCode::OK).await
}

/// The owner's `GET /v1/files/{id}/content`, which must answer 200; returns the bytes.
pub async fn download(app: &TestApp, token: Option<&str>, id: &str) -> Vec<u8> {
    download_on(&app.client, &app.address, token, id).await
}

/// [`download`] from the server at `base` (for servers without a `TestApp`).
pub async fn download_on(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    id: &str,
) -> Vec<u8> {
    let mut req = client.get(format!("{base}/v1/files/{id}/content"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("GET content");
    let resp = follow_to_bucket(client, resp).await;
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body").to_vec();
    assert_eq!(
        status,
        StatusCode::OK,
        "download of {id}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
    );
    bytes
}

/// A failed upload: the file is `failed` with `code`, has no URL, and serves no bytes.
pub async fn assert_failed(app: &TestApp, token: &str, id: &str, code: &str) -> Value {
    let file = file_of(app, Some(token), id).await;
    assert_eq!(file["status"], "failed", "{file}");
    assert_eq!(file["failure"]["code"], code, "{file}");
    assert!(file["failure"]["detail"].is_string(), "{file}");
    assert!(file["url"].is_null(), "a failed file has no URL: {file}");
    let resp = app
        .get(&format!("/v1/files/{id}/content"), Some(token))
        .await;
    assert_problem(resp, 404, "not_found").await;
    file
}

/// Polls the owner's view of a file until `done` holds (or panics after `within`).
pub async fn wait_for_file(
    app: &TestApp,
    token: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let file = file_of(app, Some(token), id).await;
        if done(&file) {
            return file;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "file {id} did not reach the expected state within {within:?}: {file}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path and query of an absolute URL of `app` (asserting it points at `app`).
pub fn local_path<'a>(app: &TestApp, url: &'a str) -> &'a str {
    url.strip_prefix(app.address.as_str())
        .unwrap_or_else(|| panic!("{url} does not start with {}", app.address))
}

/// `url` with one character of its `sig` changed.
pub fn tamper_sig(url: &str) -> String {
    let at = url.find("sig=").expect("a sig parameter") + 4;
    let mut chars: Vec<char> = url.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Registers `name` and returns `(user_id, access_token)`.
pub async fn user(app: &TestApp, name: &str) -> (String, String) {
    let (user, token, _) = app.register(name).await;
    (id_of(&user), token)
}

// ---------------------------------------------------------------------------------------------
// tus

pub const TUS: &str = "1.0.0";

/// A tus request (Tus-Resumable and Bearer set) to an absolute URL or a path of `app`.
pub fn tus(app: &TestApp, method: &str, url: &str, token: &str) -> RequestBuilder {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        app.url(url)
    };
    app.client
        .request(Method::from_bytes(method.as_bytes()).expect("method"), url)
        .header("Tus-Resumable", TUS)
        .bearer_auth(token)
}

/// `POST /v1/tus` on the server at `base` (for servers without a `TestApp`), which must
/// answer 201: `(absolute upload URL, file id)`.
pub async fn tus_create_on(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    length: usize,
    metadata: &str,
) -> (String, String) {
    let resp = client
        .post(format!("{base}/v1/tus"))
        .bearer_auth(token)
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .expect("tus creation");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").expect("Location");
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let id = url.rsplit('/').next().expect("an id").to_owned();
    (url, id)
}

/// A tus `PATCH` of `body` at `offset` to `url` (for servers without a `TestApp`); sending
/// it is left to the caller, who may expect the server to die before answering.
pub fn tus_patch_on(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    offset: usize,
    body: Vec<u8>,
) -> RequestBuilder {
    client
        .patch(url)
        .bearer_auth(token)
        .header("Tus-Resumable", TUS)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(body)
}

/// tus `Upload-Metadata` from pairs.
pub fn tus_metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", b64(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// `POST /v1/tus` that must answer 201; returns the absolute upload URL and the file id.
pub async fn tus_create(
    app: &TestApp,
    token: &str,
    length: usize,
    metadata: &str,
) -> (String, String) {
    let resp = tus(app, "POST", "/v1/tus", token)
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .expect("tus POST");
    let status = resp.status();
    let location = header(&resp, "location");
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "tus creation: {text}");
    let location = location.expect("Location on a tus creation");
    let url = if location.starts_with('/') {
        app.url(&location)
    } else {
        location
    };
    let id = url.rsplit('/').next().expect("an id").to_owned();
    assert!(
        url.ends_with(&format!("/v1/tus/{id}")),
        "Location is /v1/tus/{{id}}: {url}"
    );
    (url, id)
}

/// `PATCH` at `offset` with `bytes`; returns the response.
pub async fn tus_patch(
    app: &TestApp,
    url: &str,
    token: &str,
    offset: usize,
    bytes: &[u8],
) -> Response {
    tus(app, "PATCH", url, token)
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("tus PATCH")
}

/// `HEAD` that must answer 200; returns `Upload-Offset`.
pub async fn tus_offset(app: &TestApp, url: &str, token: &str) -> u64 {
    let resp = tus(app, "HEAD", url, token).send().await.expect("tus HEAD");
    assert_eq!(resp.status(), StatusCode::OK, "tus HEAD {url}");
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    header(&resp, "upload-offset")
        .expect("Upload-Offset on HEAD")
        .parse()
        .expect("a number")
}

pub fn header_u64(resp: &Response, name: &str) -> u64 {
    header(resp, name)
        .unwrap_or_else(|| panic!("{name} header missing"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number"))
}

// ---------------------------------------------------------------------------------------------
// The binary as a child process

/// `shutter serve` in a child process on a known port, logging to `<data_dir>/server-<n>.log`.
pub struct ChildServer {
    pub child: tokio::process::Child,
    pub base: String,
    pub pid: u32,
    log: PathBuf,
}

impl ChildServer {
    pub async fn start(data_dir: &Path, port: u16, envs: &[(&str, &str)]) -> ChildServer {
        let server = ChildServer::spawn(data_dir, port, "serve", envs);
        let client = http_client();
        server
            .wait_until("shutter serve did not become healthy", || async {
                matches!(client.get(format!("{}/healthz", server.base)).send().await,
                         Ok(resp) if resp.status() == StatusCode::OK)
            })
            .await;
        server
    }

    /// `shutter worker` on `data_dir`, once its job workers have started.
    pub async fn worker(data_dir: &Path, envs: &[(&str, &str)]) -> ChildServer {
        let worker = ChildServer::spawn(data_dir, free_port(), "worker", envs);
        worker
            .wait_until("shutter worker did not start its workers", || async {
                worker.log().contains("worker started")
            })
            .await;
        worker
    }

    /// `shutter <command>` with logs in `<data_dir>/server-<n>.log`.
    fn spawn(data_dir: &Path, port: u16, command: &str, envs: &[(&str, &str)]) -> ChildServer {
        let listen = format!("127.0.0.1:{port}");
        let mut all: Vec<(&str, &str)> = vec![
            ("SHUTTER_SERVER__LISTEN", listen.as_str()),
            ("SHUTTER_RATE_LIMITS__ENABLED", "false"),
            ("SHUTTER_LOG__FORMAT", "json"),
        ];
        all.extend_from_slice(envs);
        let mut cmd = shutter_command(data_dir, &all);
        let mut n = 0;
        let log = loop {
            let candidate = data_dir.join(format!("server-{n}.log"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let out = std::fs::File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
        cmd.arg(command);
        let child = cmd.spawn().expect("shutter starts");
        let pid = child.id().expect("a pid");
        ChildServer {
            child,
            base: format!("http://{listen}"),
            pid,
            log,
        }
    }

    /// Polls `ready` for up to 30 s; panics with `what` and the log if it never holds.
    async fn wait_until<F, Fut>(&self, what: &str, ready: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !ready().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A `TestApp`-like view for the request helpers: same base URL, a fresh client.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn proc_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{}/status", self.pid))
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("kill -9");
        let _ = self.child.wait().await;
    }

    /// Waits for the server to die on its own (a crash point) and asserts it was SIGKILL.
    pub async fn wait_killed(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not die: {}", self.log()))
            .expect("the server's exit status");
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Registers `name` on a child server; returns the access token.
pub async fn register_on(client: &reqwest::Client, base: &str, name: &str) -> String {
    let resp = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    let body = expect_status(resp, StatusCode::CREATED).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
