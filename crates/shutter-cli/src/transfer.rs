//! Moving bytes: tus 1.0.0 uploads (create, HEAD for the server's offset, PATCH in chunks
//! streamed from the file), a plain `PUT` to a presigned ticket URL, the rate limit
//! (`--limit-rate`) they share, and the watch for stalled transfers.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Body, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use crate::api::{error_of, Api, REQUEST_TIMEOUT};
use crate::error::{CliError, CliResult};
use crate::local::READ_BUF;
use crate::progress::Tracker;

const TUS_VERSION: &str = "1.0.0";
const OFFSET_TYPE: &str = "application/offset+octet-stream";

/// The bytes of one PATCH. A PATCH cut off keeps what arrived, so the size only bounds how
/// much one request carries.
pub const CHUNK: u64 = 8 * 1024 * 1024;

/// How often a PATCH that failed on the way (connection lost, a previous writer still
/// holding the upload, the server busy) is tried again, from the offset the server then
/// reports.
const RETRIES: u32 = 20;

/// The longest wait a `Retry-After` is followed for; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A transfer whose bytes do not move for this long has stalled (a connection dropped
/// without a word): it fails with `timeout`, and an upload goes on from the server's offset.
pub const STALL: Duration = Duration::from_secs(30);

/// How long the answer to a request may take once its body has gone (or for one without a
/// body).
const ANSWER_WAIT: Duration = REQUEST_TIMEOUT;

/// What an error means for an upload. One list, so that "try again" and "forget it" cannot
/// disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again from where the server stands: the connection was lost or stalled,
    /// a previous writer still holds the upload, the server asks to come back later.
    Transient,
    /// Ends this run, but the upload may go on later (the session ended, a quota, a bug).
    Fatal,
    /// The upload can never go on: the server failed, expired or deleted it.
    Dead,
}

pub fn classify(err: &CliError) -> Failure {
    match err.code.as_str() {
        "connection_failed"
        | "timeout"
        | "conflict"
        | "malformed_request"
        | "rate_limited"
        | "service_unavailable" => Failure::Transient,
        "not_found" | "upload_expired" | "checksum_mismatch" | "content_mismatch"
        | "size_mismatch" | "file_too_large" | "image_too_large" => Failure::Dead,
        _ => Failure::Fatal,
    }
}

/// How long to wait before the `failures`-th try again: what the server's `Retry-After`
/// asks (within [`MAX_RETRY_AFTER`]), else a back-off growing to 2 s.
fn pause(err: &CliError, failures: u32) -> Duration {
    match err.retry_after {
        Some(wait) => wait.min(MAX_RETRY_AFTER),
        None => Duration::from_millis(250 * u64::from(failures.clamp(1, 8))),
    }
}

/// A bandwidth limit shared by every transfer of the process: a token bucket filled at
/// `rate` bytes per second that holds at most one second of them, so time spent on anything
/// else (hashing the next file, waiting to try again) never adds up to a burst over the limit.
#[derive(Clone)]
pub struct Throttle {
    inner: Option<Arc<Mutex<Bucket>>>,
}

struct Bucket {
    rate: f64,
    /// The most the bucket holds: one second of the rate.
    burst: f64,
    /// Bytes that may go now; negative when bytes already let through are still owed.
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` before the first byte (the bucket
    /// starts empty then).
    at: Option<Instant>,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        let rate = rate as f64;
        Bucket {
            rate,
            burst: rate,
            tokens: 0.0,
            at: None,
        }
    }

    /// Lets `n` bytes through at `now`: how long to wait before sending them.
    fn reserve(&mut self, n: u64, now: Instant) -> Duration {
        let at = *self.at.get_or_insert(now);
        let refill = now.saturating_duration_since(at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = Some(now.max(at));
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

impl Throttle {
    pub fn new(rate: Option<u64>) -> Throttle {
        Throttle {
            inner: rate
                .filter(|r| *r > 0)
                .map(|rate| Arc::new(Mutex::new(Bucket::new(rate)))),
        }
    }

    /// How many bytes to read at a time: a tenth of a second of the rate (within 1 KiB and
    /// the read buffer), and never more than one second of it, so that the limit is smooth
    /// and a limited transfer never looks stalled.
    fn piece(&self) -> usize {
        let Some(rate) = self.rate() else {
            return READ_BUF;
        };
        let floor = rate.clamp(1, 1024);
        usize::try_from((rate / 10).max(floor))
            .unwrap_or(READ_BUF)
            .min(READ_BUF)
    }

    fn rate(&self) -> Option<u64> {
        let inner = self.inner.as_ref()?;
        let bucket = inner.lock().unwrap_or_else(|e| e.into_inner());
        Some(bucket.rate as u64)
    }

    /// Waits until `n` more bytes may go.
    pub async fn take(&self, n: u64) {
        let Some(inner) = &self.inner else { return };
        let wait = {
            let mut bucket = inner.lock().unwrap_or_else(|e| e.into_inner());
            bucket.reserve(n, Instant::now())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// When a request's body last moved, so that a stalled transfer is noticed: see
/// [`Activity::watch`].
#[derive(Clone)]
pub struct Activity {
    inner: Arc<Mutex<ActivityState>>,
}

struct ActivityState {
    last: Instant,
    has_body: bool,
    body_done: bool,
}

impl Activity {
    /// For a request whose body is a [`file_body`] given this activity.
    pub fn with_body() -> Activity {
        Activity::new(true)
    }

    /// For a request without a body: only its answer is waited for.
    pub fn without_body() -> Activity {
        Activity::new(false)
    }

    fn new(has_body: bool) -> Activity {
        Activity {
            inner: Arc::new(Mutex::new(ActivityState {
                last: Instant::now(),
                has_body,
                body_done: !has_body,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new try of the request starts.
    fn restart(&self) {
        let mut state = self.state();
        state.last = Instant::now();
        state.body_done = !state.has_body;
    }

    /// Bytes of the body moved.
    fn touch(&self) {
        self.state().last = Instant::now();
    }

    /// The whole body has gone.
    fn body_done(&self) {
        let mut state = self.state();
        state.last = Instant::now();
        state.body_done = true;
    }

    /// `request` (one try of a request this activity follows), failed with `timeout` when
    /// its body moves no byte for [`STALL`], or its answer does not come [`ANSWER_WAIT`]
    /// after the body has gone.
    pub async fn watch<T, E>(&self, request: impl Future<Output = Result<T, E>>) -> CliResult<T>
    where
        CliError: From<E>,
    {
        self.watch_with(request, STALL, ANSWER_WAIT).await
    }

    async fn watch_with<T, E>(
        &self,
        request: impl Future<Output = Result<T, E>>,
        stall: Duration,
        answer_wait: Duration,
    ) -> CliResult<T>
    where
        CliError: From<E>,
    {
        self.restart();
        tokio::pin!(request);
        loop {
            let (idle, limit, what) = {
                let state = self.state();
                if state.body_done {
                    (state.last.elapsed(), answer_wait, "no answer came")
                } else {
                    (state.last.elapsed(), stall, "no byte could be sent")
                }
            };
            if idle >= limit {
                return Err(CliError::new(
                    "timeout",
                    format!("{what} for {} s", limit.as_secs_f32().round()),
                ));
            }
            tokio::select! {
                done = &mut request => return done.map_err(CliError::from),
                () = tokio::time::sleep(limit - idle) => {}
            }
        }
    }
}

/// `len` bytes of `path` from `offset`, as a request body that reads the file as it is sent
/// (never the whole chunk in memory), paced by `throttle`, moving `progress`, telling
/// `activity`.
fn file_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    throttle: Throttle,
    progress: Option<Tracker>,
    activity: Activity,
) -> Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        offset: u64,
        left: u64,
        buf: Vec<u8>,
        throttle: Throttle,
        progress: Option<Tracker>,
        activity: Activity,
    }
    let piece = throttle.piece();
    let state = State {
        path,
        file: None,
        offset,
        left: len,
        buf: vec![0u8; piece],
        throttle,
        progress,
        activity,
    };
    let stream = futures::stream::try_unfold(state, |mut s| async move {
        if s.left == 0 {
            s.activity.body_done();
            return Ok(None);
        }
        if s.file.is_none() {
            let mut file = tokio::fs::File::open(&s.path).await?;
            file.seek(std::io::SeekFrom::Start(s.offset)).await?;
            s.file = Some(file);
        }
        let want = usize::try_from(s.left)
            .unwrap_or(usize::MAX)
            .min(s.buf.len());
        let n = match s.file.as_mut() {
            Some(file) => file.read(&mut s.buf[..want]).await?,
            None => 0,
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} got shorter while it was being sent", s.path.display()),
            ));
        }
        s.throttle.take(n as u64).await;
        s.left -= n as u64;
        if let Some(p) = &s.progress {
            p.inc(n as u64);
        }
        s.activity.touch();
        // The HTTP client stops polling the body once Content-Length bytes have gone, so the
        // last piece is where the body ends: from here on the answer's wait applies.
        if s.left == 0 {
            s.activity.body_done();
        }
        let chunk = Bytes::copy_from_slice(&s.buf[..n]);
        Ok::<_, std::io::Error>(Some((chunk, s)))
    });
    Body::wrap_stream(stream)
}

/// `Upload-Metadata`: `key base64(value)` pairs.
fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", STANDARD.encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates a tus upload (`POST /v1/tus`) of `length` bytes; returns its URL.
pub async fn create(api: &mut Api, length: u64, meta: &[(&str, &str)]) -> CliResult<Url> {
    let endpoint = api.url("v1/tus")?;
    let meta = metadata(meta);
    let response = api
        .send(|c, t| {
            c.post(endpoint.clone())
                .bearer_auth(t)
                .header("Tus-Resumable", TUS_VERSION)
                .header("Upload-Length", length.to_string())
                .header("Upload-Metadata", meta.as_str())
                .header(CONTENT_LENGTH, "0")
                .timeout(REQUEST_TIMEOUT)
        })
        .await?;
    if response.status() != StatusCode::CREATED {
        return Err(error_of(response).await);
    }
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| CliError::new("internal", "the tus creation answer has no Location"))?;
    // Absolute or relative: resolved against the endpoint, as HTTP says; an absolute one is
    // built from the server's public_url, so it is moved onto --server.
    let url = endpoint
        .join(location)
        .map_err(|e| CliError::new("internal", format!("bad Location {location:?}: {e}")))?;
    Ok(api.rebase(url))
}

/// The last path segment of a tus URL: the file id.
pub fn file_id_of(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_owned()
}

/// Where the server stands with an upload (tus `HEAD`): `Ok(offset)`, or the error that says
/// the upload cannot go on (`not_found`: failed or deleted; `upload_expired`).
pub async fn offset(api: &mut Api, url: &Url) -> CliResult<u64> {
    let response = api
        .send(|c, t| {
            c.head(url.clone())
                .bearer_auth(t)
                .header("Tus-Resumable", TUS_VERSION)
                .timeout(REQUEST_TIMEOUT)
        })
        .await?;
    if !response.status().is_success() {
        return Err(error_of(response).await);
    }
    upload_offset(&response)
        .ok_or_else(|| CliError::new("internal", "the tus HEAD answer has no Upload-Offset"))
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Sends `path` (of `size` bytes) to the tus upload at `url`, from `offset` (what the server
/// said) to the end, in PATCHes of [`CHUNK`] bytes. A PATCH that fails on the way (or stalls)
/// is tried again from the offset the server then reports, after the wait the server asks
/// for, if it does.
pub async fn patch_all(
    api: &mut Api,
    url: &Url,
    path: &Path,
    size: u64,
    mut offset: u64,
    throttle: &Throttle,
    progress: &Tracker,
) -> CliResult<()> {
    let mut failures = 0;
    // What the server has already is not sent now: the rate and ETA start from here.
    progress.start_at(offset);
    while offset < size {
        let len = CHUNK.min(size - offset);
        let mut result = patch_once(api, url, path, offset, len, throttle, progress).await;
        // After a failure on the way: wait a little, then ask the server where it stands.
        while let Err(err) = result {
            if classify(&err) != Failure::Transient || failures >= RETRIES {
                return Err(err);
            }
            failures += 1;
            tokio::time::sleep(pause(&err, failures)).await;
            result = self::offset(api, url).await;
        }
        if let Ok(next) = result {
            if next > offset {
                failures = 0;
            }
            offset = next;
        }
        progress.set(offset);
    }
    Ok(())
}

/// The one PATCH of an empty file (it completes the upload). A conflict means an earlier
/// run completed it already.
pub async fn patch_empty(api: &mut Api, url: &Url) -> CliResult<()> {
    let response = api
        .send(|c, t| {
            c.patch(url.clone())
                .bearer_auth(t)
                .header("Tus-Resumable", TUS_VERSION)
                .header("Upload-Offset", "0")
                .header(CONTENT_TYPE, OFFSET_TYPE)
                .header(CONTENT_LENGTH, "0")
                .timeout(REQUEST_TIMEOUT)
        })
        .await?;
    if response.status().is_success() || response.status() == StatusCode::CONFLICT {
        return Ok(());
    }
    Err(error_of(response).await)
}

/// One PATCH of `len` bytes at `offset`; the new offset.
async fn patch_once(
    api: &mut Api,
    url: &Url,
    path: &Path,
    offset: u64,
    len: u64,
    throttle: &Throttle,
    progress: &Tracker,
) -> CliResult<u64> {
    let activity = Activity::with_body();
    let response = api
        .send_watched(
            |c, t| {
                progress.set(offset);
                c.patch(url.clone())
                    .bearer_auth(t)
                    .header("Tus-Resumable", TUS_VERSION)
                    .header("Upload-Offset", offset.to_string())
                    .header(CONTENT_TYPE, OFFSET_TYPE)
                    .header(CONTENT_LENGTH, len.to_string())
                    .body(file_body(
                        path.to_path_buf(),
                        offset,
                        len,
                        throttle.clone(),
                        Some(progress.clone()),
                        activity.clone(),
                    ))
            },
            Some(&activity),
        )
        .await?;
    if response.status() != StatusCode::NO_CONTENT && !response.status().is_success() {
        return Err(error_of(response).await);
    }
    match upload_offset(&response) {
        Some(next) if next > offset => Ok(next),
        _ => Err(CliError::new(
            "conflict",
            "the server did not take the bytes; asking where the upload stands",
        )),
    }
}

/// A plain `PUT` of the whole file (or of `range`) to a presigned URL with the ticket's
/// headers. No Authorization: the URL carries its own signature, and may be the object
/// store's.
pub async fn put_file(
    api: &Api,
    url: &Url,
    headers: &serde_json::Map<String, serde_json::Value>,
    path: &Path,
    range: (u64, u64),
    throttle: &Throttle,
    progress: &Tracker,
) -> CliResult<reqwest::Response> {
    let (start, len) = range;
    let activity = Activity::with_body();
    let mut request = api
        .http()
        .put(url.clone())
        .header(CONTENT_LENGTH, len.to_string())
        .body(file_body(
            path.to_path_buf(),
            start,
            len,
            throttle.clone(),
            Some(progress.clone()),
            activity.clone(),
        ));
    for (name, value) in headers {
        if let Some(value) = value.as_str() {
            if !name.eq_ignore_ascii_case("content-length")
                && !name.eq_ignore_ascii_case("authorization")
            {
                request = request.header(name.as_str(), value);
            }
        }
    }
    let response = activity.watch(request.send()).await?;
    if !response.status().is_success() {
        return Err(error_of(response).await);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_base64_pairs() {
        assert_eq!(
            metadata(&[("filename", "world.png"), ("sha256", "ab")]),
            "filename d29ybGQucG5n,sha256 YWI="
        );
    }

    #[test]
    fn the_file_id_is_the_last_segment() -> Result<(), url::ParseError> {
        let url = Url::parse("http://h/v1/tus/0190-abc")?;
        assert_eq!(file_id_of(&url), "0190-abc");
        Ok(())
    }

    fn about(got: Duration, want_ms: u64) -> bool {
        got.as_secs_f64().mul_add(1000.0, -(want_ms as f64)).abs() < 1.0
    }

    #[test]
    fn idle_time_builds_at_most_one_second_of_credit() {
        let mut bucket = Bucket::new(100_000);
        let t0 = Instant::now();
        // The bucket starts empty: the first bytes wait for their time.
        let wait = bucket.reserve(10_000, t0);
        assert!(about(wait, 100), "{wait:?}");
        // Ten idle seconds later, a burst of 300 000 bytes: only 100 000 (one second) of
        // them go at once, the rest at the rate.
        let later = t0 + Duration::from_secs(10);
        let wait = bucket.reserve(300_000, later);
        assert!(about(wait, 2000), "{wait:?}");
        // Pieces after that are paced at the rate, each waiting for its own bytes.
        let wait = bucket.reserve(50_000, later + wait);
        assert!(about(wait, 500), "{wait:?}");
    }

    #[test]
    fn pieces_never_take_more_than_a_second() {
        assert_eq!(Throttle::new(None).piece(), READ_BUF);
        assert_eq!(Throttle::new(Some(100 * 1024 * 1024)).piece(), READ_BUF);
        assert_eq!(Throttle::new(Some(100_000)).piece(), 10_000);
        assert_eq!(Throttle::new(Some(5_000)).piece(), 1024);
        assert_eq!(Throttle::new(Some(300)).piece(), 300);
    }

    #[test]
    fn one_list_says_what_an_error_means() {
        let code = |c: &str| classify(&CliError::new(c, "x"));
        assert_eq!(code("connection_failed"), Failure::Transient);
        assert_eq!(code("rate_limited"), Failure::Transient);
        assert_eq!(code("service_unavailable"), Failure::Transient);
        assert_eq!(code("upload_expired"), Failure::Dead);
        assert_eq!(code("checksum_mismatch"), Failure::Dead);
        assert_eq!(code("unauthenticated"), Failure::Fatal);
        assert_eq!(code("quota_exceeded"), Failure::Fatal);
        let busy = CliError {
            retry_after: Some(Duration::from_secs(3)),
            ..CliError::new("rate_limited", "x")
        };
        assert_eq!(pause(&busy, 1), Duration::from_secs(3));
        let long = CliError {
            retry_after: Some(Duration::from_secs(3600)),
            ..CliError::new("service_unavailable", "x")
        };
        assert_eq!(pause(&long, 1), MAX_RETRY_AFTER);
        assert_eq!(
            pause(&CliError::new("timeout", "x"), 2),
            Duration::from_millis(500)
        );
    }

    #[tokio::test]
    async fn a_stalled_transfer_times_out_and_a_moving_one_does_not() {
        // Ten times the moving body's 50 ms steps: a loaded machine's late wake-ups fit.
        let stall = Duration::from_millis(500);
        // A body that never moves.
        let activity = Activity::with_body();
        let started = Instant::now();
        let hung = activity
            .watch_with(std::future::pending::<Result<(), CliError>>(), stall, stall)
            .await;
        assert_eq!(hung.err().map(|e| e.code).as_deref(), Some("timeout"));
        assert!(started.elapsed() < Duration::from_secs(5));
        // A body that moves every 50 ms for a second, then an answer.
        let activity = Activity::with_body();
        let moving = {
            let activity = activity.clone();
            async move {
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    activity.touch();
                }
                activity.body_done();
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, CliError>(7)
            }
        };
        let done = activity.watch_with(moving, stall, stall).await;
        assert_eq!(done.ok(), Some(7));
        // Sent, but no answer.
        let activity = Activity::without_body();
        let silent = activity
            .watch_with(
                std::future::pending::<Result<(), CliError>>(),
                Duration::from_secs(60),
                stall,
            )
            .await;
        assert!(silent.err().is_some_and(|e| e.detail.contains("no answer")));
    }

    /// Through a real HTTP client and server: the client stops reading a body once its
    /// Content-Length has gone, and a slow answer after that is waited for, not taken for a
    /// stalled body.
    #[tokio::test]
    async fn a_slow_answer_after_the_whole_body_is_waited_for(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use tokio::io::AsyncWriteExt;
        const LEN: usize = 64 * 1024;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("body.bin");
        std::fs::write(&path, vec![7u8; LEN])?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            // The headers and the whole body, then a slow answer.
            loop {
                let n = socket.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let head = seen.windows(4).position(|w| w == b"\r\n\r\n");
                if head.is_some_and(|h| seen.len() >= h + 4 + LEN) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(800)).await;
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await?;
            Ok::<_, std::io::Error>(seen.len())
        });
        let activity = Activity::with_body();
        let request = reqwest::Client::new()
            .put(format!("http://{address}/"))
            .header(CONTENT_LENGTH, LEN)
            .body(file_body(
                path,
                0,
                LEN as u64,
                Throttle::new(None),
                None,
                activity.clone(),
            ))
            .send();
        let answer = activity
            .watch_with(request, Duration::from_millis(300), Duration::from_secs(10))
            .await
            .map_err(|e| format!("{}: {}", e.code, e.detail))?;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert!(server.await?? > LEN);
        Ok(())
    }

    #[tokio::test]
    async fn the_throttle_paces_bytes() {
        let throttle = Throttle::new(Some(100_000));
        let start = Instant::now();
        for _ in 0..5 {
            throttle.take(10_000).await;
        }
        // 50 000 bytes at 100 000 per second: half a second.
        assert!(start.elapsed() >= Duration::from_millis(450));
        let free = Throttle::new(None);
        let start = Instant::now();
        free.take(u64::MAX / 2).await;
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
