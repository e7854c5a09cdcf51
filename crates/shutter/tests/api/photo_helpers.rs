//! Shared helpers of the photo tests (SPEC 3 posts with media, DESIGN "Upload pipeline" and
//! "Jobs"): a small client that works against the in-process app and against a child
//! `shutter serve` alike, posts with photos, a Server-Sent Events reader, a JPEG header reader
//! (size and metadata segments), variant checks, the data directory's blobs and database,
//! and `shutter jobs` output.

#![allow(dead_code)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::helpers::*;
use crate::upload_helpers::*;

// ---------------------------------------------------------------------------------------------
// A client for one server

/// A base URL and a client: the in-process [`TestApp`] or a [`ChildServer`].
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn of(app: &TestApp) -> Api {
        Api {
            base: app.address.clone(),
            client: app.client.clone(),
        }
    }

    pub fn child(server: &ChildServer) -> Api {
        Api {
            base: server.base.clone(),
            client: http_client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        note_ticket_owners(path, token, req.send().await.expect("POST")).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("DELETE")
    }

    /// Registers `name`; returns `(user_id, access_token)`.
    pub async fn register(&self, name: &str) -> (String, String) {
        let resp = self
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": name, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        let (user, token, _) = session_parts(body);
        (id_of(&user), token)
    }

    /// Logs `name` in again (a restarted server on another port is another token issuer).
    pub async fn login(&self, name: &str) -> String {
        let resp = self
            .post_json(
                "/v1/auth/login",
                None,
                &json!({"username": name, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(resp, StatusCode::OK).await;
        session_parts(body).1
    }

    /// `GET /v1/posts/{id}` that must answer 200.
    pub async fn post_of(&self, token: Option<&str>, id: &str) -> Value {
        expect_status(
            self.get(&format!("/v1/posts/{id}"), token).await,
            StatusCode::OK,
        )
        .await
    }

    /// `GET /v1/files/{id}` that must answer 200.
    pub async fn file_of(&self, token: &str, id: &str) -> Value {
        expect_status(
            self.get(&format!("/v1/files/{id}"), Some(token)).await,
            StatusCode::OK,
        )
        .await
    }

    /// The ids of a list endpoint's first page (limit 100).
    pub async fn list_ids(&self, path: &str, token: Option<&str>) -> Vec<String> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = expect_status(
            self.get(&format!("{path}{sep}limit=100"), token).await,
            StatusCode::OK,
        )
        .await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(id_of)
            .collect()
    }

    /// `POST /v1/posts` with photos declared for `photos` (`(filename, content_type, bytes)`);
    /// asserts 201 and returns `(post, upload tickets)`.
    pub async fn create_photo_post(
        &self,
        token: &str,
        caption: &str,
        photos: &[(&str, &str, &[u8])],
    ) -> (Value, Vec<Value>) {
        let media: Vec<Value> = photos
            .iter()
            .map(|(name, ct, bytes)| media_spec(name, ct, bytes))
            .collect();
        let resp = self
            .post_json(
                "/v1/posts",
                Some(token),
                &json!({"caption": caption, "media": media}),
            )
            .await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        let uploads = body["uploads"].as_array().expect("uploads").clone();
        assert_eq!(uploads.len(), photos.len(), "a ticket per photo: {body}");
        (body["post"].clone(), uploads)
    }

    /// PUTs `bytes` to the ticket (no Authorization, the ticket's headers).
    pub async fn put(&self, ticket: &Value, bytes: &[u8]) -> Response {
        send_to_ticket(&self.client, &self.base, ticket, bytes.to_vec()).await
    }

    /// PUTs the bytes, which must be accepted (200, `processing` or `ready`).
    pub async fn put_ok(&self, ticket: &Value, bytes: &[u8]) -> Value {
        let done = expect_status(self.put(ticket, bytes).await, StatusCode::OK).await;
        let status = done["file"]["status"].as_str().unwrap_or_default();
        assert!(
            status == "processing" || status == "ready",
            "an accepted photo is processing or ready: {done}"
        );
        done["file"].clone()
    }

    /// Polls the post (as `token`'s user) until `done` holds; panics after `within`.
    pub async fn wait_post(
        &self,
        token: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let post = self.post_of(Some(token), id).await;
            if done(&post) {
                return post;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "post {id} did not reach the expected state within {within:?}: {post}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the post leaves `pending` and asserts it ended `status`.
    pub async fn wait_settled(&self, token: &str, id: &str, status: &str) -> Value {
        let post = self
            .wait_post(token, id, Duration::from_secs(90), |p| {
                p["status"] != "pending"
            })
            .await;
        assert_eq!(post["status"], status, "{post}");
        post
    }

    /// Polls the owner's view of a file until `done` holds; panics after `within`.
    pub async fn wait_file(
        &self,
        token: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let file = self.file_of(token, id).await;
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

    /// `POST /v1/files` + PUT of an image, waited for until processed (`ready`).
    pub async fn upload_image(&self, token: &str, name: &str, ct: &str, bytes: &[u8]) -> Value {
        let resp = self
            .post_json("/v1/files", Some(token), &media_spec(name, ct, bytes))
            .await;
        let created = expect_status(resp, StatusCode::CREATED).await;
        let id = id_of(&created["file"]);
        self.put_ok(&created["upload"], bytes).await;
        let file = self
            .wait_file(token, &id, Duration::from_secs(60), |f| {
                f["status"] == "ready" || f["status"] == "failed"
            })
            .await;
        assert_eq!(file["status"], "ready", "{file}");
        file
    }

    /// GET of an absolute URL without credentials: `(status, content type, bytes)`.
    pub async fn fetch(&self, url: &str) -> (StatusCode, String, Vec<u8>) {
        assert!(
            url.starts_with(&self.base),
            "{url} is a URL of this server ({})",
            self.base
        );
        let resp = self.client.get(url).send().await.expect("GET url");
        // On S3 a private file's bytes come from the bucket, by redirect.
        let resp = follow_to_bucket(&self.client, resp).await;
        let status = resp.status();
        let ct = header(&resp, "content-type").unwrap_or_default();
        let bytes = resp.bytes().await.expect("body").to_vec();
        (status, ct, bytes)
    }

    /// Polls until a GET of `url` answers 404 (a deleted file's URLs stop working).
    pub async fn wait_gone(&self, url: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, _, body) = self.fetch(url).await;
            if status == StatusCode::NOT_FOUND {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} still answers {status} after {within:?}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens the user's event stream (`GET /v1/events`); the subscription exists once this
    /// returns (the server subscribes before it answers).
    pub async fn events(&self, token: &str) -> Sse {
        let resp = self
            .client
            .get(self.url("/v1/events"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .expect("GET /v1/events");
        assert_eq!(resp.status(), StatusCode::OK, "the event stream opens");
        let ct = header(&resp, "content-type").unwrap_or_default();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            resp,
            buf: String::new(),
        }
    }
}

/// A post's photo as `POST /v1/posts` (and `POST /v1/files`) takes it, with its sha256.
pub fn media_spec(filename: &str, content_type: &str, bytes: &[u8]) -> Value {
    json!({
        "filename": filename,
        "content_type": content_type,
        "size": bytes.len(),
        "sha256": sha256_hex(bytes),
    })
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

pub struct Sse {
    resp: Response,
    buf: String,
}

impl Sse {
    /// The next event's JSON, or `None` if none comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data).expect("event data is JSON"));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => return None,
                Ok(chunk) => {
                    let chunk = chunk
                        .expect("SSE stream")
                        .expect("the SSE stream stays open");
                    self.buf
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                }
            }
        }
    }

    /// Reads events until one satisfies `last` (included); panics if none comes in `within`.
    pub async fn until(&mut self, within: Duration, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await.unwrap_or_else(|| {
                panic!("the awaited event did not come within {within:?}; got {seen:#?}")
            });
            let done = last(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Every event that arrives within `within`.
    pub async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) => seen.push(e),
                None => return seen,
            }
        }
    }
}

/// How many of `events` have this type and this `file_id`/`post_id`.
pub fn count_events(events: &[Value], kind: &str, key: &str, id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && e[key] == id)
        .count()
}

// ---------------------------------------------------------------------------------------------
// JPEG headers

/// What a JPEG's header says: frame size, and the markers of the segments before the scan.
#[derive(Debug)]
pub struct JpegInfo {
    pub width: u32,
    pub height: u32,
    pub markers: Vec<u8>,
}

/// Reads a baseline/progressive JPEG's segments up to the first scan; panics if the bytes are
/// not a JPEG.
pub fn jpeg_info(bytes: &[u8]) -> JpegInfo {
    assert!(
        bytes.len() > 4 && bytes[0] == 0xFF && bytes[1] == 0xD8,
        "not a JPEG (no SOI): {:02x?}",
        &bytes[..bytes.len().min(8)]
    );
    let mut at = 2;
    let mut markers = Vec::new();
    let mut size = None;
    loop {
        assert!(at + 4 <= bytes.len(), "the JPEG ends before its scan");
        assert_eq!(bytes[at], 0xFF, "a marker at {at}");
        let mut marker = bytes[at + 1];
        while marker == 0xFF {
            at += 1; // fill bytes
            marker = bytes[at + 1];
        }
        if marker == 0xDA {
            break; // start of scan: the header is over
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        assert!(len >= 2 && at + 2 + len <= bytes.len(), "segment length");
        let is_sof = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if is_sof {
            let seg = &bytes[at + 4..at + 2 + len];
            let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            size = Some((width, height));
        }
        markers.push(marker);
        at += 2 + len;
    }
    let (width, height) = size.expect("a SOF segment before the scan");
    JpegInfo {
        width,
        height,
        markers,
    }
}

/// EXIF as `kamadak-exif` reads it from a JPEG: `None` when there is none.
pub fn exif_of(bytes: &[u8]) -> Option<exif::Exif> {
    let mut cursor = std::io::Cursor::new(bytes);
    match exif::Reader::new().read_from_container(&mut cursor) {
        Ok(exif) => Some(exif),
        Err(exif::Error::NotFound(_)) => None,
        Err(e) => panic!("reading EXIF failed unexpectedly: {e}"),
    }
}

/// A variant's bytes: a JPEG of `width`×`height` with no EXIF, GPS or XMP (no APP1 segment,
/// which carries both, and nothing `kamadak-exif` can read).
pub fn assert_clean_jpeg(bytes: &[u8], width: u32, height: u32, what: &str) {
    let info = jpeg_info(bytes);
    assert_eq!(
        (info.width, info.height),
        (width, height),
        "{what}: the JPEG's frame is the announced size"
    );
    assert!(
        !info.markers.contains(&0xE1),
        "{what}: no APP1 (EXIF/XMP) segment, markers {:02x?}",
        info.markers
    );
    assert!(
        exif_of(bytes).is_none(),
        "{what}: kamadak-exif finds no EXIF"
    );
}

/// The size a `wN` variant should have: `n` wide keeping the aspect ratio, never upscaled.
pub fn fit_width(width: u32, height: u32, n: u32) -> (u32, u32) {
    if width <= n {
        (width, height)
    } else {
        let h = (f64::from(height) * f64::from(n) / f64::from(width)).round() as u32;
        (n, h)
    }
}

/// A ready photo (a post's media or a File): displayed size, blurhash, and the three
/// variants with the right sizes, each downloadable without credentials as a clean JPEG of
/// exactly that size.
pub async fn assert_processed(api: &Api, media: &Value, width: u32, height: u32) {
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["width"], width, "displayed width: {media}");
    assert_eq!(media["height"], height, "displayed height: {media}");
    let blurhash = media["blurhash"].as_str().expect("a blurhash");
    assert!(
        blurhash.len() >= 6
            && blurhash
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "#$%*+,-.:;=?@[]^_{|}~".contains(c)),
        "a blurhash in base 83: {blurhash:?}"
    );
    let variants = media["variants"].as_object().expect("variants");
    let names: Vec<&str> = variants.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 3, "thumb, w640, w1080: {media}");
    let expected = [
        ("thumb", (150, 150)),
        ("w640", fit_width(width, height, 640)),
        ("w1080", fit_width(width, height, 1080)),
    ];
    for (name, (w, h)) in expected {
        let v = &media["variants"][name];
        let got_w = v["width"].as_u64().expect("variant width") as u32;
        let got_h = v["height"].as_u64().expect("variant height") as u32;
        assert_eq!(got_w, w, "{name} width: {media}");
        assert!(
            got_h.abs_diff(h) <= 1,
            "{name} height {got_h}, expected {h} (±1): {media}"
        );
        let url = v["url"].as_str().expect("variant url");
        let (status, ct, bytes) = api.fetch(url).await;
        assert_eq!(status, StatusCode::OK, "{name} downloads: {url}");
        assert!(ct.starts_with("image/jpeg"), "{name} is image/jpeg: {ct}");
        assert_clean_jpeg(&bytes, got_w, got_h, name);
    }
}

/// The variant URLs and the original's URL of a ready photo.
pub fn urls_of(media: &Value) -> Vec<String> {
    let mut urls = vec![media["url"].as_str().expect("url").to_owned()];
    for name in ["thumb", "w640", "w1080"] {
        urls.push(
            media["variants"][name]["url"]
                .as_str()
                .expect("variant url")
                .to_owned(),
        );
    }
    urls
}

// ---------------------------------------------------------------------------------------------
// The data directory

/// Whether the blob store of `data_dir` (the bucket or the blob directory, see
/// [`crate::backend::blob_store`]) holds the stored bytes of file `id` (`files/<id>`).
pub async fn original_stored(data_dir: &Path, id: &str) -> bool {
    object_stored(data_dir, &format!("files/{id}")).await
}

/// Whether the blob store of `data_dir` holds the object `key` (`files/<id>[/<variant>]`).
pub async fn object_stored(data_dir: &Path, key: &str) -> bool {
    match crate::backend::blob_store(data_dir).get(key, None).await {
        Ok(_) => true,
        Err(shutter_app::ports::BlobError::NotFound) => false,
        Err(e) => panic!("reading {key} from the blob store failed: {e:?}"),
    }
}

/// Whether the blob store of `data_dir` keeps anything of file `id`: its object, a variant or
/// an upload in progress.
pub async fn bytes_kept(data_dir: &Path, id: &str) -> bool {
    let ids = crate::backend::blob_store(data_dir)
        .list_file_ids()
        .await
        .expect("the blob store lists its files");
    ids.iter().any(|(kept, _)| kept.to_string() == id)
}

/// Polls until the blob store of `data_dir` keeps nothing of file `id`.
pub async fn wait_bytes_erased(data_dir: &Path, id: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while bytes_kept(data_dir, id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bytes of {id} are still stored after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's SQLite database (`<data_dir>/shutter.db`), opened beside the running server
/// (WAL mode allows it) with a generous busy timeout; for the SQLite-only tests (`backend`).
pub async fn database(data_dir: &Path) -> SqlitePool {
    let url = format!("sqlite://{}", data_dir.join("shutter.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("sqlite url")
        .busy_timeout(Duration::from_secs(20));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("the server's database opens")
}

/// A job row as the tests read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub priority: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
    pub payload: String,
}

/// Every job of `kind`, oldest first.
pub async fn jobs_of_kind(db: &SqlitePool, kind: &str) -> Vec<JobRow> {
    sqlx::query_as(
        "SELECT id, status, attempts, max_attempts, priority, run_at, last_error, payload \
         FROM jobs WHERE kind = ? ORDER BY created_at, id",
    )
    .bind(kind)
    .fetch_all(db)
    .await
    .expect("reading jobs")
}

/// The `process_file` job of file `file_id` (there must be exactly one).
pub async fn process_job_of(db: &SqlitePool, file_id: &str) -> JobRow {
    let jobs: Vec<JobRow> = jobs_of_kind(db, "process_file")
        .await
        .into_iter()
        .filter(|j| j.payload.contains(file_id))
        .collect();
    assert_eq!(
        jobs.len(),
        1,
        "one process_file job for {file_id}: {jobs:?}"
    );
    jobs[0].clone()
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// One line of `shutter jobs list`.
#[derive(Debug, Clone)]
pub struct JobLine {
    pub id: String,
    pub kind: String,
    pub status: String,
    /// `attempts/max_attempts`.
    pub attempts: String,
    pub rest: String,
}

/// Runs `shutter jobs list --status <status>` on the data directory; returns its lines, and
/// checks the trailing count.
pub async fn jobs_list(data_dir: &Path, status: &str) -> Vec<JobLine> {
    let out = run_shutter(
        data_dir,
        &["jobs", "list", "--status", status, "--limit", "100"],
        &[],
    )
    .await;
    assert_success(&out, "shutter jobs list");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Log records (JSON lines, when stdout is not a terminal) are not part of the listing.
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('{'))
        .collect();
    let count = lines.pop().expect("a count line");
    assert!(lines[0].starts_with("id"), "a header line: {text}");
    let jobs: Vec<JobLine> = lines[1..]
        .iter()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let mut next = || parts.next().unwrap_or_default().to_owned();
            let (id, kind, status, attempts) = (next(), next(), next(), next());
            let rest: Vec<String> = parts.map(str::to_owned).collect();
            JobLine {
                id,
                kind,
                status,
                attempts,
                rest: rest.join(" "),
            }
        })
        .collect();
    assert_eq!(count, format!("{} job(s)", jobs.len()), "{text}");
    jobs
}
