//! Moving bytes: tus 1.0.0 uploads (create, HEAD for the server's offset, PATCH in chunks
//! streamed from the file), a plain `PUT` to a presigned ticket URL, and the rate limit
//! (`--limit-rate`) they share.

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
/// holding the upload) is tried again, from the offset the server then reports.
const RETRIES: u32 = 20;

/// A bandwidth limit shared by every transfer of the process: bytes are let through so that
/// the average since the first byte stays at or under `rate` bytes per second.
#[derive(Clone)]
pub struct Throttle {
    inner: Option<Arc<Mutex<ThrottleState>>>,
}

struct ThrottleState {
    rate: u64,
    start: Option<Instant>,
    sent: u64,
}

impl Throttle {
    pub fn new(rate: Option<u64>) -> Throttle {
        Throttle {
            inner: rate.filter(|r| *r > 0).map(|rate| {
                Arc::new(Mutex::new(ThrottleState {
                    rate,
                    start: None,
                    sent: 0,
                }))
            }),
        }
    }

    /// How many bytes to read at a time: small enough that the limit is smooth.
    fn piece(&self) -> usize {
        match self.rate() {
            Some(rate) => usize::try_from(rate / 10)
                .unwrap_or(READ_BUF)
                .clamp(1024, READ_BUF),
            None => READ_BUF,
        }
    }

    fn rate(&self) -> Option<u64> {
        let inner = self.inner.as_ref()?;
        let state = inner.lock().unwrap_or_else(|e| e.into_inner());
        Some(state.rate)
    }

    /// Waits until `n` more bytes may go.
    pub async fn take(&self, n: u64) {
        let Some(inner) = &self.inner else { return };
        let wait = {
            let mut state = inner.lock().unwrap_or_else(|e| e.into_inner());
            let start = *state.start.get_or_insert_with(Instant::now);
            state.sent += n;
            let due = Duration::from_secs_f64(state.sent as f64 / state.rate as f64);
            due.saturating_sub(start.elapsed())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// `len` bytes of `path` from `offset`, as a request body that reads the file as it is sent
/// (never the whole chunk in memory), paced by `throttle`, moving `progress`.
fn file_body(
    path: PathBuf,
    offset: u64,
    len: u64,
    throttle: Throttle,
    progress: Option<Tracker>,
) -> Body {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        offset: u64,
        left: u64,
        buf: Vec<u8>,
        throttle: Throttle,
        progress: Option<Tracker>,
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
    };
    let stream = futures::stream::try_unfold(state, |mut s| async move {
        if s.left == 0 {
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
    // Absolute or relative: resolved against the endpoint, as HTTP says.
    endpoint
        .join(location)
        .map_err(|e| CliError::new("internal", format!("bad Location {location:?}: {e}")))
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

/// Whether an error ends an upload for good (as opposed to a lost connection, a previous
/// writer still holding the upload, or the server being briefly unavailable).
pub fn is_final(err: &CliError) -> bool {
    !matches!(
        err.code.as_str(),
        "connection_failed" | "timeout" | "conflict" | "service_unavailable" | "malformed_request"
    )
}

/// Sends `path` (of `size` bytes) to the tus upload at `url`, from `offset` (what the server
/// said) to the end, in PATCHes of [`CHUNK`] bytes. A PATCH that fails on the way is tried
/// again from the offset the server then reports.
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
    progress.set(offset);
    while offset < size {
        let len = CHUNK.min(size - offset);
        let mut result = patch_once(api, url, path, offset, len, throttle, progress).await;
        // After a failure on the way: wait a little, then ask the server where it stands.
        while let Err(err) = result {
            if is_final(&err) || failures >= RETRIES {
                return Err(err);
            }
            failures += 1;
            tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
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
    let response = api
        .send(|c, t| {
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
                ))
        })
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

/// A plain `PUT` of the whole file to a presigned URL with the ticket's headers (no
/// Authorization: the URL carries its own signature).
pub async fn put_file(
    api: &Api,
    url: &str,
    headers: &serde_json::Map<String, serde_json::Value>,
    path: &Path,
    range: (u64, u64),
    throttle: &Throttle,
    progress: &Tracker,
) -> CliResult<reqwest::Response> {
    let (start, len) = range;
    let mut request = api
        .http()
        .put(url)
        .header(CONTENT_LENGTH, len.to_string())
        .body(file_body(
            path.to_path_buf(),
            start,
            len,
            throttle.clone(),
            Some(progress.clone()),
        ));
    for (name, value) in headers {
        if let Some(value) = value.as_str() {
            if !name.eq_ignore_ascii_case("content-length") {
                request = request.header(name.as_str(), value);
            }
        }
    }
    let response = request.send().await?;
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
