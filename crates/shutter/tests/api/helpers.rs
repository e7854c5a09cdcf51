//! Shared test harness: every test starts its own Shutter (the real `Application`, on port 0,
//! with its own data directory and database, see [`crate::backend`]) and talks to it over HTTP
//! like any client would.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use shutter::startup::Application;
use shutter_core::config::Config;
use shutter_core::ErrorCode;
use tokio::task::JoinHandle;

use crate::backend::{self, TestDataDir};

/// The password every test user gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`; also the issuer (`iss`) of the tokens the server signs.
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: TestDataDir,
    server: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub use crate::backend::{test_config, unix_now};

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_in(backend::data_dir().await, configure).await
}

/// An app whose blobs stay in a local directory whatever the run asks for (the tests listed
/// in [`crate::backend`]).
pub async fn spawn_local_storage_app() -> TestApp {
    spawn_local_storage_app_with(|_| {}).await
}

pub async fn spawn_local_storage_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_in(backend::local_storage_data_dir().await, configure).await
}

/// An app on SQLite whatever the run asks for, for the tests listed in [`crate::backend`].
pub async fn spawn_sqlite_app() -> TestApp {
    spawn_app_in(backend::sqlite_data_dir().await, |_| {}).await
}

/// An app in this data directory (see [`crate::backend::data_dir_on`]).
pub async fn spawn_app_in(data_dir: TestDataDir, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(data_dir.path());
    configure(&mut config);
    start(config, data_dir).await
}

/// Starts the application with this configuration, keeping `data_dir` alive with it. Without a
/// database URL the server uses the database of `config.data_dir`, and without a blob directory
/// of its own the blob store of `config.data_dir` (see [`crate::backend`]).
pub async fn start(mut config: Config, data_dir: TestDataDir) -> TestApp {
    if config.database.url.is_none() {
        config.database.url = backend::database_url_for(&config.data_dir);
    }
    backend::configure_storage(&mut config);
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let port = app.port();
    let server = tokio::spawn(async move {
        if let Err(err) = app.run_until_stopped().await {
            eprintln!("server stopped with an error: {err:#}");
        }
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: http_client(),
        data_dir,
        server,
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `Authorization: Bearer <token>` when a token is given.
    pub fn authed(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.request(method, path);
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.authed(Method::GET, path, token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let resp = self
            .authed(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("POST");
        crate::upload_helpers::note_ticket_owners(path, token, resp).await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.authed(Method::PATCH, path, token)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.authed(Method::DELETE, path, token)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn delete_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.authed(Method::DELETE, path, token)
            .json(body)
            .send()
            .await
            .expect("DELETE")
    }

    /// Registers `username` with [`PASSWORD`]; returns `(user, access_token, refresh_token)`.
    pub async fn register(&self, username: &str) -> (Value, String, String) {
        let resp = self
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": username, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        session_parts(body)
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Creates a text post and returns the post object.
    pub async fn create_post(&self, token: &str, caption: &str) -> Value {
        let resp = self
            .post_json("/v1/posts", Some(token), &json!({"caption": caption}))
            .await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        body["post"].clone()
    }

    pub async fn get_post(&self, id: &str, token: Option<&str>) -> Value {
        let resp = self.get(&format!("/v1/posts/{id}"), token).await;
        expect_status(resp, StatusCode::OK).await
    }

    /// Comments on a post and returns the comment.
    pub async fn create_comment(&self, token: &str, post_id: &str, text: &str) -> Value {
        let resp = self
            .post_json(
                &format!("/v1/posts/{post_id}/comments"),
                Some(token),
                &json!({"text": text}),
            )
            .await;
        expect_status(resp, StatusCode::CREATED).await
    }

    pub async fn me(&self, token: &str) -> Value {
        let resp = self.get("/v1/users/me", Some(token)).await;
        expect_status(resp, StatusCode::OK).await
    }

    /// Makes `username` an admin with the CLI, against this app's data directory and database,
    /// while the server runs (SQLite in WAL mode allows the second writer).
    pub async fn make_admin(&self, username: &str) {
        let out = run_shutter(
            self.data_dir.path(),
            &["admin", "set-role", username, "admin"],
            &[],
        )
        .await;
        assert_success(&out, "shutter admin set-role");
    }

    /// Sets `username`'s tier with the CLI.
    pub async fn set_tier_cli(&self, username: &str, tier: &str) {
        let out = run_shutter(
            self.data_dir.path(),
            &["admin", "set-tier", username, tier],
            &[],
        )
        .await;
        assert_success(&out, "shutter admin set-tier");
    }

    /// The 64-byte HS256 key the server signs its access tokens with.
    pub fn jwt_key(&self) -> Vec<u8> {
        let key = std::fs::read(self.data_dir.path().join("secrets").join("jwt.key"))
            .expect("secrets/jwt.key exists");
        assert_eq!(key.len(), 64, "the JWT key is 64 raw bytes");
        key
    }

    /// Signs `claims` with the server's own key, HS256, like the server does.
    pub fn forge_token(&self, claims: &Value) -> String {
        sign_hs(Algorithm::HS256, &self.jwt_key(), claims)
    }

    /// Claims the server would put into an access token for `user`, valid for ten minutes.
    pub fn claims_for(&self, user_id: &str) -> Value {
        let now = unix_now();
        json!({
            "sub": user_id,
            "tier": "basic",
            "role": "user",
            "iat": now,
            "exp": now + 600,
            "iss": self.address,
        })
    }

    /// Reads every page of a list endpoint (`path` must not carry a query yet) with `limit`.
    pub async fn collect_pages(&self, path: &str, token: Option<&str>, limit: u32) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let url = match &cursor {
                Some(c) => format!("{path}?limit={limit}&cursor={c}"),
                None => format!("{path}?limit={limit}"),
            };
            let page = expect_status(self.get(&url, token).await, StatusCode::OK).await;
            let page_items = page["items"].as_array().expect("items is an array");
            assert!(page_items.len() <= limit as usize, "page over the limit");
            items.extend(page_items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => {
                    assert!(
                        page["next_cursor"].is_null(),
                        "next_cursor is a string or null"
                    );
                    return items;
                }
            }
        }
        panic!("pagination of {path} did not end");
    }
}

pub fn sign_hs(alg: Algorithm, key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key))
        .expect("token encodes")
}

/// The claims part of a JWT, decoded without checking anything.
pub fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url payload");
    serde_json::from_slice(&payload).expect("JSON claims")
}

/// Splits a register/login/refresh body into `(user, access_token, refresh_token)`.
pub fn session_parts(body: Value) -> (Value, String, String) {
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    (body["user"].clone(), access, refresh)
}

pub fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Asserts the status and returns the JSON body (or `Null` for an empty body).
pub async fn expect_status(resp: Response, status: StatusCode) -> Value {
    let actual = resp.status();
    let url = resp.url().clone();
    let text = resp.text().await.expect("body");
    assert_eq!(actual, status, "{url} answered {actual}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
    }
}

/// Asserts an RFC 9457 problem with `code` and returns its body.
///
/// Pins the whole contract of an error: status, `application/problem+json`, `type`, `title`
/// (the one from the code list), `status`, `detail`, `code`, and `request_id` equal to the
/// `X-Request-Id` header.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    let actual = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = header(&resp, "content-type").unwrap_or_default();
    let request_id = header(&resp, "x-request-id");
    let text = resp.text().await.expect("body");
    assert_eq!(
        actual, status,
        "{url}: expected {status} {code}, got: {text}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "{url}: problem content type, got {content_type:?}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    assert_eq!(body["code"], code, "{url}: {body}");
    assert_eq!(body["type"], format!("urn:shutter:error:{code}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    let known = ErrorCode::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .unwrap_or_else(|| panic!("{code} is not in shutter_core's list of error codes"));
    assert_eq!(known.status(), status, "the code list's status for {code}");
    assert_eq!(body["title"], known.title(), "{body}");
    assert!(body["detail"].is_string(), "detail is a string: {body}");
    let request_id = request_id.expect("X-Request-Id on every response");
    assert!(!request_id.is_empty());
    assert_eq!(body["request_id"], request_id, "{body}");
    if code == "validation_failed" {
        let errors = body["errors"]
            .as_array()
            .expect("errors[] on validation_failed");
        assert!(!errors.is_empty(), "{body}");
        for e in errors {
            assert!(e["field"].is_string() && e["message"].is_string(), "{body}");
        }
    }
    body
}

/// Asserts a 400 `validation_failed` whose `errors` name `field`.
pub async fn assert_invalid_field(resp: Response, field: &str) -> Value {
    let body = assert_problem(resp, 400, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&field),
        "errors should name {field}: {body}"
    );
    body
}

pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

/// Asserts RFC 3339 UTC with milliseconds: `2026-11-22T10:00:00.123Z`.
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let shape: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.dddZ", "timestamp {text}");
}

/// Asserts a UUIDv7 in text form.
pub fn assert_uuid_v7(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let id = uuid::Uuid::parse_str(text).unwrap_or_else(|_| panic!("{text} is not a UUID"));
    assert_eq!(id.get_version_num(), 7, "{text} is a UUIDv7");
}

/// Asserts the UserSummary shape `{id, username, display_name}` for `user`.
pub fn assert_summary_of(summary: &Value, user: &Value) {
    assert_eq!(summary["id"], user["id"], "{summary}");
    assert_eq!(summary["username"], user["username"], "{summary}");
    assert!(summary["display_name"].is_string(), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// The binary

/// Runs the `shutter` binary with `SHUTTER_DATA_DIR=data_dir` (and the database and blob store
/// of `data_dir`, see [`crate::backend`]), in `data_dir` (so no stray `./shutter.toml` is read), with inherited
/// `SHUTTER_*` variables removed, and a time limit.
pub async fn run_shutter(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = shutter_command(data_dir, envs);
    cmd.args(args);
    let child = cmd.spawn().expect("the shutter binary starts");
    match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
        Ok(out) => out.expect("shutter output"),
        Err(_) => panic!("`shutter {}` did not finish within 60 s", args.join(" ")),
    }
}

/// A `shutter` command with a clean environment for `data_dir`, stdout/stderr piped.
pub fn shutter_command(data_dir: &Path, envs: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shutter"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SHUTTER_") {
            cmd.env_remove(key);
        }
    }
    if let Some(url) = backend::database_url_for(data_dir) {
        cmd.env("SHUTTER_DATABASE__URL", url);
    }
    cmd.envs(backend::storage_env_for(data_dir));
    cmd.current_dir(data_dir)
        .env("SHUTTER_DATA_DIR", data_dir)
        .env("SHUTTER_JOBS__WORKERS", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port that was free a moment ago, for child processes that need a known address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
