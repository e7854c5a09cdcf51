//! Uploads against the real binary in a child process (SPEC 4): a 1 GiB PUT streamed to disk
//! with flat memory, and uploads interrupted by `kill -9` of the server, which must resume or
//! start again after a restart and never end `ready` with the wrong bytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::upload_helpers::*;

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn a_1_gib_put_streams_to_disk_with_flat_memory() {
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let server = ChildServer::start(
        data.path(),
        port,
        &[
            ("SHUTTER_TIERS__BASIC__MAX_FILE_SIZE", "2GiB"),
            ("SHUTTER_TIERS__BASIC__STORAGE_QUOTA", "4GiB"),
        ],
    )
    .await;
    let client = http_client();
    let token = register_on(&client, &server.base, "alice").await;

    const TOTAL: u64 = 1024 * MIB;
    const CHUNK: usize = 256 * 1024;
    let resp = client
        .post(server.url("/v1/files"))
        .bearer_auth(&token)
        .json(&json!({"filename": "big.bin", "size": TOTAL, "content_type": "application/octet-stream"}))
        .send()
        .await
        .unwrap();
    let created = expect_status(resp, StatusCode::CREATED).await;
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let url = created["upload"]["url"].as_str().unwrap().to_owned();

    // Warm the server up (a first upload allocates its buffers), then measure from here.
    let warm = pseudo_random(4 * MIB as usize, 1);
    let resp = client
        .post(server.url("/v1/files"))
        .bearer_auth(&token)
        .json(&json!({"filename": "warm.bin", "size": warm.len(), "content_type": "application/octet-stream"}))
        .send()
        .await
        .unwrap();
    let warm_ticket = expect_status(resp, StatusCode::CREATED).await["upload"].clone();
    let resp = client
        .put(warm_ticket["url"].as_str().unwrap())
        .header("content-type", "application/octet-stream")
        .body(warm)
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::OK).await;
    let before = server.proc_kib("VmRSS");
    // Reset the peak (VmHWM) so it measures the upload alone; if the kernel refuses, the
    // peak since start is an over-estimate, which only makes the check stricter.
    let _ = std::fs::write(format!("/proc/{}/clear_refs", server.pid), "5");

    // 1 GiB made on the fly, hashed as it goes: never held whole.
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let base = pseudo_random(CHUNK, 42);
    let chunks = TOTAL / CHUNK as u64;
    let h = hasher.clone();
    let body = futures::stream::iter((0..chunks).map(move |i| {
        let mut chunk = base.clone();
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        h.lock().unwrap().update(&chunk);
        Ok::<Bytes, std::io::Error>(Bytes::from(chunk))
    }));

    // Sample the server's RSS while the bytes flow.
    let peak = Arc::new(Mutex::new(before));
    let sampling = {
        let peak = peak.clone();
        let pid = server.pid;
        tokio::spawn(async move {
            loop {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    {
                        let mut p = peak.lock().unwrap();
                        *p = (*p).max(kib);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .put(&url)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("the 1 GiB PUT");
    let done = expect_status(resp, StatusCode::OK).await;
    let elapsed = started.elapsed();
    sampling.abort();
    let hwm = server.proc_kib("VmHWM");
    let sampled = *peak.lock().unwrap();
    let expected_sha = hex(&hasher.lock().unwrap().clone().finalize());

    assert_eq!(done["file"]["status"], "ready", "{done}");
    assert_eq!(done["file"]["size"], TOTAL);
    assert_eq!(done["file"]["bytes_received"], TOTAL);
    assert_eq!(
        done["file"]["sha256"], expected_sha,
        "the stored bytes are the generator's"
    );
    let growth = hwm.max(sampled).saturating_sub(before);
    eprintln!(
        "1 GiB PUT in {elapsed:?}: RSS before {before} KiB, peak sampled {sampled} KiB, VmHWM {hwm} KiB"
    );
    assert!(
        growth < 64 * 1024,
        "the server's memory grew by {growth} KiB for a 1 GiB upload (before {before} KiB, sampled peak {sampled} KiB, VmHWM {hwm} KiB)"
    );

    // The last bytes on disk are the generator's last bytes.
    let resp = client
        .get(server.url(&format!("/v1/files/{id}/content")))
        .bearer_auth(&token)
        .header("range", "bytes=-1024")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let tail = resp.bytes().await.unwrap();
    let mut last = pseudo_random(CHUNK, 42);
    last[..8].copy_from_slice(&(chunks - 1).to_le_bytes());
    assert_eq!(tail.to_vec(), last[CHUNK - 1024..].to_vec());
}

/// The README's own example: `SHUTTER_TIERS__BASIC__STORAGE_QUOTA=20GiB` overrides one key
/// of a tier; the others keep their defaults.
#[tokio::test]
async fn one_tier_key_from_the_environment_is_enough() {
    let data = crate::backend::data_dir().await;
    for (key, value) in [
        ("SHUTTER_TIERS__BASIC__MAX_FILE_SIZE", "2GiB"),
        ("SHUTTER_TIERS__BASIC__STORAGE_QUOTA", "20GiB"),
    ] {
        let out = run_shutter(data.path(), &["check"], &[(key, value)]).await;
        assert_success(&out, &format!("{key}={value} shutter check"));
    }
}

/// Streams `parts` of `piece` bytes `pause` apart into `request`, then holds the body open.
fn stalled_body(
    request: reqwest::RequestBuilder,
    data: Vec<u8>,
    piece: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<Result<reqwest::Response, reqwest::Error>> {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let request = request.body(reqwest::Body::wrap_stream(rx));
    tokio::spawn(async move {
        let sending = async move {
            for part in data.chunks(piece) {
                if tx.send(Ok(Bytes::copy_from_slice(part))).await.is_err() {
                    return;
                }
                tokio::time::sleep(pause).await;
            }
            // Never finish: the server dies first.
            std::future::pending::<()>().await;
        };
        tokio::select! {
            resp = request.send() => resp,
            () = sending => unreachable!(),
        }
    })
}

async fn file_on(client: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let resp = client
        .get(format!("{base}/v1/files/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::OK).await
}

#[tokio::test]
async fn a_tus_upload_resumes_after_the_server_is_killed() {
    let data = crate::backend::data_dir().await;
    let port = free_port();
    let mut server = ChildServer::start(data.path(), port, &[]).await;
    let client = http_client();
    let token = register_on(&client, &server.base, "alice").await;
    let bytes = pseudo_random(4 * MIB as usize, 77);
    let sha = sha256_hex(&bytes);

    let metadata = tus_metadata(&[("filename", "killed.bin"), ("sha256", &sha)]);
    let (url, id) = tus_create_on(&client, &server.base, &token, bytes.len(), &metadata).await;

    // Not a multiple of any buffer size: some of it is in flight when the server dies.
    let (piece, sent) = (300_001, 5 * 300_001);
    let patch = client
        .patch(&url)
        .bearer_auth(&token)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream");
    let pending = stalled_body(
        patch,
        bytes[..sent].to_vec(),
        piece,
        Duration::from_millis(150),
    );
    tokio::time::sleep(Duration::from_millis(5 * 150 + 400)).await;
    let during = file_on(&client, &server.base, &token, &id).await;
    assert!(
        during["bytes_received"].as_u64().unwrap() > 0,
        "progress was recorded before the kill: {during}"
    );
    server.kill9().await;
    let outcome = pending.await.unwrap();
    assert!(
        outcome
            .as_ref()
            .map(|r| r.status() != StatusCode::NO_CONTENT)
            .unwrap_or(true),
        "the PATCH cannot have succeeded"
    );
    if crate::backend::postgres_requested() {
        // On a shared database other nodes may be mid-upload, so a starting server takes only
        // uploads idle this long to be cut off; a crashed node's restart is that slow. (Until
        // then the upload stands at the progress its dead writer recorded, which need not be
        // durable: on S3 the bytes since the last chunk are lost with the process.)
        let idle = shutter_app::uploads::STALLED_AT_START_MS as u64;
        tokio::time::sleep(Duration::from_millis(idle + 500)).await;
    }

    let server = ChildServer::start(data.path(), port, &[]).await;
    let resp = client
        .head(&url)
        .bearer_auth(&token)
        .header("Tus-Resumable", TUS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the upload survives the restart"
    );
    let offset = header_u64(&resp, "upload-offset") as usize;
    eprintln!("after the kill: offset {offset} of {sent} sent ({during})");
    assert!(
        offset <= sent,
        "offset {offset} is at most what was sent ({sent})"
    );

    let resp = client
        .patch(&url)
        .bearer_auth(&token)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes[offset..].to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "resuming at the reported offset {offset} completes: {text}\n{}",
        server.log()
    );
    let file = file_on(&client, &server.base, &token, &id).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!(file["sha256"], sha, "never corrupt: {file}");
    let resp = client
        .get(server.url(&format!("/v1/files/{id}/content")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let resp = follow_to_bucket(&client, resp).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&resp.bytes().await.unwrap()), sha);
}

#[tokio::test]
async fn a_put_cut_by_a_server_kill_is_never_ready_with_wrong_bytes() {
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let mut server = ChildServer::start(data.path(), port, &[]).await;
    let client = http_client();
    let token = register_on(&client, &server.base, "alice").await;
    let bytes = pseudo_random(4 * MIB as usize, 78);
    let sha = sha256_hex(&bytes);

    let resp = client
        .post(server.url("/v1/files"))
        .bearer_auth(&token)
        .json(&json!({"filename": "cut.bin", "size": bytes.len(), "content_type": "application/octet-stream"}))
        .send()
        .await
        .unwrap();
    let created = expect_status(resp, StatusCode::CREATED).await;
    let id = created["file"]["id"].as_str().unwrap().to_owned();
    let url = created["upload"]["url"].as_str().unwrap().to_owned();

    let put = client
        .put(&url)
        .header("content-type", "application/octet-stream");
    let pending = stalled_body(
        put,
        bytes[..6 * 256 * 1024].to_vec(),
        256 * 1024,
        Duration::from_millis(100),
    );
    tokio::time::sleep(Duration::from_millis(6 * 100 + 400)).await;
    let during = file_on(&client, &server.base, &token, &id).await;
    assert_eq!(during["status"], "uploading", "{during}");
    server.kill9().await;
    let outcome = pending.await.unwrap();
    assert!(
        outcome
            .as_ref()
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true),
        "the PUT cannot have succeeded"
    );
    if crate::backend::postgres_requested() {
        // On a shared database other nodes may be mid-upload, so a starting server takes only
        // uploads idle this long to be cut off; a crashed node's restart is that slow.
        let idle = shutter_app::uploads::STALLED_AT_START_MS as u64;
        tokio::time::sleep(Duration::from_millis(idle + 500)).await;
    }

    let server = ChildServer::start(data.path(), port, &[]).await;
    let after = file_on(&client, &server.base, &token, &id).await;
    let status_after_restart = after["status"].as_str().unwrap().to_owned();
    assert_ne!(
        status_after_restart, "ready",
        "half a file is never ready: {after}"
    );
    let resp = client
        .get(server.url(&format!("/v1/files/{id}/content")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "no bytes are served");

    if status_after_restart != "failed" {
        // The same URL takes the whole file again.
        let resp = client
            .put(&url)
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let done = expect_status(resp, StatusCode::OK).await;
        assert_eq!(done["file"]["status"], "ready");
        assert_eq!(done["file"]["sha256"], sha, "never corrupt");
        let resp = client
            .get(server.url(&format!("/v1/files/{id}/content")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(sha256_hex(&resp.bytes().await.unwrap()), sha);
    }
    assert!(
        status_after_restart == "pending" || status_after_restart == "failed",
        "after a restart a PUT cut by the kill leaves the file pending (to retry) or failed, \
         not {status_after_restart:?}: {after}"
    );
}
