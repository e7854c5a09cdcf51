//! Memory stays bounded whatever anonymous or hostile clients send: the server runs as a
//! child process and its resident memory is read from `/proc/<pid>/status`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_status, free_port, http_client};
use crate::upload_helpers::{
    b64, register_on, testdata, tus_create_on, tus_metadata, tus_patch_on, ChildServer, TUS,
};

const MIB: u64 = 1024;

/// 24 anonymous clients, 12 failed logins each (unknown usernames): each login hashes a
/// password (19 MiB of Argon2 working memory). Hashing on an unbounded pool took a server from
/// 16 MB to gigabytes and kept it there.
#[tokio::test]
async fn failed_logins_from_many_clients_keep_memory_bounded() {
    let data = crate::backend::data_dir().await;
    let server = ChildServer::start(data.path(), free_port(), &[]).await;
    let client = http_client();
    let clients = (0..24).map(|c| {
        let client = client.clone();
        let base = server.base.clone();
        async move {
            for n in 0..12 {
                let resp = client
                    .post(format!("{base}/v1/auth/login"))
                    .json(&json!({"username": format!("nobody_{c}_{n}"), "password": "wrong password"}))
                    .send()
                    .await
                    .expect("login");
                let body = expect_status(resp, StatusCode::UNAUTHORIZED).await;
                assert_eq!(body["code"], "invalid_credentials", "{body}");
            }
        }
    });
    futures::future::join_all(clients).await;
    let peak = server.proc_kib("VmHWM");
    eprintln!("failed logins: peak {} MiB", peak / MIB);
    assert!(
        peak < 160 * MIB,
        "288 failed logins took the server to {} MiB resident",
        peak / MIB
    );
}

/// Paused tus uploads cost the server no memory per upload beyond their digests: 400
/// uploads paused after 256 KiB each once held 100 MiB of their first bytes.
#[tokio::test]
async fn paused_tus_uploads_hold_none_of_their_bytes_in_memory() {
    let data = crate::backend::data_dir().await;
    let server = ChildServer::start(
        data.path(),
        free_port(),
        &[("SHUTTER_TIERS__BASIC__MAX_CONCURRENT_UPLOADS", "1000")],
    )
    .await;
    let client = http_client();
    let token = register_on(&client, &server.base, "pauser").await;
    let chunk = vec![0x5au8; 256 * 1024];
    let pause_some = |count: usize| {
        let (client, base, token, chunk) = (&client, &server.base, &token, &chunk);
        async move {
            for n in 0..count {
                let metadata = format!(
                    "filename {},content_type {}",
                    b64(format!("part-{n}.bin").as_bytes()),
                    b64(b"application/octet-stream")
                );
                let resp = client
                    .post(format!("{base}/v1/tus"))
                    .header("Tus-Resumable", TUS)
                    .bearer_auth(token)
                    .header("Upload-Length", (1024 * 1024).to_string())
                    .header("Upload-Metadata", metadata)
                    .send()
                    .await
                    .expect("tus POST");
                assert_eq!(resp.status(), StatusCode::CREATED);
                let location = resp.headers()["location"]
                    .to_str()
                    .expect("text")
                    .to_owned();
                let url = if location.starts_with('/') {
                    format!("{base}{location}")
                } else {
                    location
                };
                let resp = client
                    .patch(url)
                    .header("Tus-Resumable", TUS)
                    .bearer_auth(token)
                    .header("Upload-Offset", "0")
                    .header("Content-Type", "application/offset+octet-stream")
                    .body(chunk.clone())
                    .send()
                    .await
                    .expect("tus PATCH");
                assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            }
        }
    };
    // Warm up the allocator and the connection pool first.
    pause_some(20).await;
    let before = server.proc_kib("VmRSS");
    pause_some(400).await;
    let after = server.proc_kib("VmRSS");
    let growth = after.saturating_sub(before);
    eprintln!("paused tus uploads: {before} KiB before, {after} KiB after");
    assert!(
        growth < 40 * MIB,
        "400 paused uploads grew the server by {} MiB ({before} KiB to {after} KiB)",
        growth / MIB
    );
}

/// A small image padded to hundreds of megabytes passes every check before decoding; the
/// processing job must not read it whole into memory to decode a 1080×1080 picture.
#[tokio::test]
async fn an_image_padded_to_hundreds_of_megabytes_is_processed_in_bounded_memory() {
    const PADDED: u64 = 512 * 1024 * 1024;
    let data = crate::backend::local_storage_data_dir().await;
    let server = ChildServer::start(
        data.path(),
        free_port(),
        &[("SHUTTER_TIERS__BASIC__MAX_FILE_SIZE", "1GiB")],
    )
    .await;
    let client = http_client();
    let token = register_on(&client, &server.base, "padder").await;
    let jpeg = testdata("photos/kleiber_1080x1080.jpg");
    let resp = client
        .post(format!("{}/v1/files", server.base))
        .bearer_auth(&token)
        .json(&json!({"filename": "padded.jpg", "size": PADDED, "content_type": "image/jpeg"}))
        .send()
        .await
        .expect("create");
    let created = expect_status(resp, StatusCode::CREATED).await;
    let ticket = &created["upload"];
    let id = created["file"]["id"].as_str().expect("an id").to_owned();
    // The body streams: the JPEG, then zeros to the declared size.
    let zeros = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    let rest = PADDED - jpeg.len() as u64;
    let tail_chunks = rest / zeros.len() as u64;
    let last = (rest % zeros.len() as u64) as usize;
    let body = futures::stream::iter(
        std::iter::once(bytes::Bytes::from(jpeg))
            .chain((0..tail_chunks).map(move |_| zeros.clone()))
            .chain(std::iter::once(bytes::Bytes::from(vec![0u8; last])))
            .map(Ok::<_, std::io::Error>),
    );
    let mut put = client
        .put(ticket["url"].as_str().expect("url"))
        .body(reqwest::Body::wrap_stream(body))
        .timeout(Duration::from_secs(300));
    for (name, value) in ticket["headers"].as_object().expect("headers") {
        put = put.header(name.as_str(), value.as_str().expect("text"));
    }
    let resp = put.send().await.expect("PUT");
    let uploaded: Value = expect_status(resp, StatusCode::OK).await;
    assert_eq!(uploaded["file"]["status"], "processing", "{uploaded}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let file = loop {
        let resp = client
            .get(format!("{}/v1/files/{id}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET file");
        let file: Value = expect_status(resp, StatusCode::OK).await;
        if file["status"] != "processing" {
            break file;
        }
        assert!(tokio::time::Instant::now() < deadline, "still processing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!(file["width"], 1080, "{file}");
    let peak = server.proc_kib("VmHWM");
    eprintln!("padded image: peak {} MiB", peak / MIB);
    assert!(
        peak < 200 * MIB,
        "processing a {} MiB padded image took the server to {} MiB resident",
        PADDED / (1024 * 1024),
        peak / MIB
    );
}

/// A tus upload into S3 goes through the server part by part: 256 MiB in 8 MiB PATCHes grow
/// the server's peak resident memory by far less than the object (the bound is 64 MiB, what
/// a 1 GiB upload may cost too: the server holds one part, not the object).
#[tokio::test]
async fn a_tus_upload_into_s3_streams_through_in_bounded_memory() {
    use sha2::{Digest, Sha256};
    const SIZE: usize = 256 * 1024 * 1024;
    const PATCH: usize = 8 * 1024 * 1024;
    let data = crate::backend::data_dir_on(
        crate::backend::Database::Requested,
        crate::backend::Storage::S3,
    )
    .await;
    let server = ChildServer::start(
        data.path(),
        free_port(),
        &[("SHUTTER_TIERS__BASIC__MAX_FILE_SIZE", "1GiB")],
    )
    .await;
    let client = http_client();
    let token = register_on(&client, &server.base, "streamer").await;
    let metadata = tus_metadata(&[
        ("filename", "big.bin"),
        ("content_type", "application/octet-stream"),
    ]);
    let (url, id) = tus_create_on(&client, &server.base, &token, SIZE, &metadata).await;
    let before = server.proc_kib("VmHWM");
    let mut sha = Sha256::new();
    let mut offset = 0;
    while offset < SIZE {
        let body: Vec<u8> = (offset..offset + PATCH)
            .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
            .collect();
        sha.update(&body);
        let resp = tus_patch_on(&client, &url, &token, offset, body)
            .send()
            .await
            .expect("tus PATCH");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "at {offset}");
        offset += PATCH;
    }
    let peak = server.proc_kib("VmHWM");
    let growth = peak.saturating_sub(before);
    eprintln!("tus into S3: peak {before} KiB before, {peak} KiB after 256 MiB");
    assert!(
        growth < 64 * MIB,
        "a 256 MiB tus upload into S3 grew the server's peak by {} MiB",
        growth / MIB
    );
    let resp = client
        .get(format!("{}/v1/files/{id}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("file");
    let file: Value = expect_status(resp, StatusCode::OK).await;
    assert_eq!(file["status"], "ready", "{file}");
    let hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(file["sha256"], hex);
}
