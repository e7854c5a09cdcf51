//! tus 1.0.0 at `/v1/tus` spoken by hand (SPEC 4): capabilities, creation (also with
//! upload), offsets, checksums, termination, expiry and the version/auth preconditions.

use std::time::Duration;

use md5::Md5;
use reqwest::StatusCode;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::upload_helpers::*;

#[tokio::test]
async fn options_lists_the_capabilities() {
    let app = spawn_app().await;
    for path in ["/v1/tus", &format!("/v1/tus/{}", uuid::Uuid::now_v7())] {
        let resp = app
            .request(reqwest::Method::OPTIONS, path)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status() == StatusCode::NO_CONTENT || resp.status() == StatusCode::OK,
            "{path}: {}",
            resp.status()
        );
        assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
        let versions = header(&resp, "tus-version").unwrap();
        assert!(versions.split(',').any(|v| v.trim() == TUS), "{versions}");
        let extensions: Vec<String> = header(&resp, "tus-extension")
            .unwrap()
            .split(',')
            .map(|e| e.trim().to_owned())
            .collect();
        for ext in [
            "creation",
            "creation-with-upload",
            "expiration",
            "checksum",
            "termination",
        ] {
            assert!(
                extensions.iter().any(|e| e == ext),
                "{ext} in {extensions:?}"
            );
        }
        let algorithms = header(&resp, "tus-checksum-algorithm").unwrap();
        for alg in ["sha1", "md5", "sha256"] {
            assert!(
                algorithms.split(',').any(|a| a.trim() == alg),
                "{alg} in {algorithms}"
            );
        }
        let max = header_u64(&resp, "tus-max-size");
        assert!(
            max >= 100 * 1024 * 1024,
            "at least the basic tier's 100 MiB: {max}"
        );
    }
}

#[tokio::test]
async fn create_head_and_patch_an_upload() {
    let app = spawn_app().await;
    let (alice_id, token) = user(&app, "alice").await;
    let photo = testdata("photos/path_progressive_1600x1000.jpg");
    let metadata = tus_metadata(&[
        ("filename", "path.jpg"),
        ("content_type", "image/jpeg"),
        ("visibility", "public"),
        ("sha256", &sha256_hex(&photo)),
    ]);
    let (url, id) = tus_create(&app, &token, photo.len(), &metadata).await;

    let resp = tus(&app, "HEAD", &url, &token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    assert_eq!(header_u64(&resp, "upload-offset"), 0);
    assert_eq!(header_u64(&resp, "upload-length"), photo.len() as u64);
    assert_eq!(header(&resp, "cache-control").as_deref(), Some("no-store"));
    let expires = header(&resp, "upload-expires").expect("Upload-Expires (expiration)");
    assert!(expires.ends_with(" GMT"), "an HTTP date: {expires}");

    let file = file_of(&app, Some(&token), &id).await;
    assert_eq!(file["owner_id"], alice_id.as_str());
    assert_eq!(file["filename"], "path.jpg");
    assert_eq!(file["content_type"], "image/jpeg");
    assert_eq!(file["visibility"], "public");
    assert_eq!(file["size"], photo.len());
    assert_eq!(file["status"], "pending");

    let half = photo.len() / 2;
    let resp = tus_patch(&app, &url, &token, 0, &photo[..half]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    assert_eq!(header_u64(&resp, "upload-offset"), half as u64);
    assert_eq!(tus_offset(&app, &url, &token).await, half as u64);
    let file = file_of(&app, Some(&token), &id).await;
    assert_eq!(file["bytes_received"], half, "{file}");
    assert_ne!(file["status"], "ready");

    // The wrong offset is a conflict; a body of the wrong type is refused.
    for offset in [0, half - 1, half + 1] {
        let resp = tus_patch(&app, &url, &token, offset, &photo[offset..]).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT, "offset {offset}");
        assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    }
    let resp = tus(&app, "PATCH", &url, &token)
        .header("Upload-Offset", half.to_string())
        .header("Content-Type", "application/octet-stream")
        .body(photo[half..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = tus(&app, "PATCH", &url, &token)
        .header("Content-Type", "application/offset+octet-stream")
        .body(photo[half..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "Upload-Offset is required"
    );
    assert_eq!(
        tus_offset(&app, &url, &token).await,
        half as u64,
        "nothing moved"
    );

    let resp = tus_patch(&app, &url, &token, half, &photo[half..]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header_u64(&resp, "upload-offset"), photo.len() as u64);
    let done = wait_ready(&app, &token, &id).await;
    assert_eq!(done["sha256"], sha256_hex(&photo));
    assert_eq!(done["width"], 1600);
    assert_eq!(done["height"], 1000);
    assert_eq!(download(&app, None, &id).await, photo, "public");
    assert_eq!(tus_offset(&app, &url, &token).await, photo.len() as u64);
    let resp = tus_patch(&app, &url, &token, photo.len(), b"x").await;
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "a finished upload takes no more"
    );
}

#[tokio::test]
async fn creation_with_upload_and_the_filetype_key() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(100_000, 21);

    // The creating request carries the first bytes.
    let metadata = tus_metadata(&[
        ("filename", "first.bin"),
        ("filetype", "application/x-test"),
    ]);
    let resp = tus(&app, "POST", "/v1/tus", &token)
        .header("Upload-Length", bytes.len().to_string())
        .header("Upload-Metadata", &metadata)
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes[..40_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header_u64(&resp, "upload-offset"), 40_000);
    let location = header(&resp, "location").unwrap();
    let id = location.rsplit('/').next().unwrap().to_owned();
    let url = if location.starts_with('/') {
        app.url(&location)
    } else {
        location
    };
    assert_eq!(tus_offset(&app, &url, &token).await, 40_000);
    let resp = tus_patch(&app, &url, &token, 40_000, &bytes[40_000..]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let done = file_of(&app, Some(&token), &id).await;
    assert_eq!(done["status"], "ready");
    assert_eq!(
        done["content_type"], "application/x-test",
        "filetype names the type"
    );
    assert_eq!(done["filename"], "first.bin");
    assert_eq!(done["sha256"], sha256_hex(&bytes));

    // The whole file in the creating request.
    let resp = tus(&app, "POST", "/v1/tus", &token)
        .header("Upload-Length", bytes.len().to_string())
        .header("Upload-Metadata", tus_metadata(&[("filename", "all.bin")]))
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header_u64(&resp, "upload-offset"), bytes.len() as u64);
    let id = header(&resp, "location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let done = file_of(&app, Some(&token), &id).await;
    assert_eq!(done["status"], "ready");
    assert_eq!(download(&app, Some(&token), &id).await, bytes);
}

fn digest(alg: &str, bytes: &[u8]) -> Vec<u8> {
    match alg {
        "sha1" => Sha1::digest(bytes).to_vec(),
        "md5" => Md5::digest(bytes).to_vec(),
        "sha256" => Sha256::digest(bytes).to_vec(),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn upload_checksum_mismatch_is_460_and_drops_the_bytes() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(90_000, 22);
    let (url, id) = tus_create(
        &app,
        &token,
        bytes.len(),
        &tus_metadata(&[("filename", "c.bin")]),
    )
    .await;
    let patch = |offset: usize, part: &[u8], checksum: String| {
        tus(&app, "PATCH", &url, &token)
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Checksum", checksum)
            .body(part.to_vec())
            .send()
    };
    let garbage = pseudo_random(30_000, 99);
    for (i, alg) in ["sha1", "md5", "sha256"].into_iter().enumerate() {
        let (start, end) = (i * 30_000, (i + 1) * 30_000);
        let part = &bytes[start..end];
        // Other bytes under this part's checksum: 460, dropped, the offset stays.
        let resp = patch(
            start,
            &garbage,
            format!("{alg} {}", b64(&digest(alg, part))),
        )
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), 460, "{alg}");
        assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
        assert_eq!(header_u64(&resp, "upload-offset"), start as u64, "{alg}");
        assert_eq!(tus_offset(&app, &url, &token).await, start as u64, "{alg}");
        // The right bytes with the right checksum go on.
        let resp = patch(start, part, format!("{alg} {}", b64(&digest(alg, part))))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{alg}");
        assert_eq!(header_u64(&resp, "upload-offset"), end as u64, "{alg}");
    }
    let done = file_of(&app, Some(&token), &id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(
        done["sha256"],
        sha256_hex(&bytes),
        "the dropped bytes left no trace"
    );
    assert_eq!(download(&app, Some(&token), &id).await, bytes);

    // An algorithm that is not offered is a bad request.
    let (url, _) = tus_create(&app, &token, 10, &tus_metadata(&[("filename", "d.bin")])).await;
    let resp = tus(&app, "PATCH", &url, &token)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Checksum", format!("crc32 {}", b64(b"1234")))
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(tus_offset(&app, &url, &token).await, 0);
}

#[tokio::test]
async fn a_whole_file_checksum_mismatch_fails_the_completing_patch() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(50_000, 23);
    let wrong = sha256_hex(b"something else");
    let metadata = tus_metadata(&[("filename", "w.bin"), ("sha256", &wrong)]);
    let (url, id) = tus_create(&app, &token, bytes.len(), &metadata).await;
    let resp = tus_patch(&app, &url, &token, 0, &bytes[..20_000]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = tus_patch(&app, &url, &token, 20_000, &bytes[20_000..]).await;
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    assert_problem(resp, 422, "checksum_mismatch").await;
    assert_failed(&app, &token, &id, "checksum_mismatch").await;
    let resp = tus(&app, "HEAD", &url, &token).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "a failed upload is gone for tus"
    );

    // Upload-Metadata's sha256 is hex like everywhere: a bad one is refused at creation.
    let resp = tus(&app, "POST", "/v1/tus", &token)
        .header("Upload-Length", "10")
        .header("Upload-Metadata", tus_metadata(&[("sha256", "not-hex")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn termination_removes_the_upload_and_the_file() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let bytes = pseudo_random(10_000, 24);
    let (url, id) = tus_create(
        &app,
        &alice,
        bytes.len(),
        &tus_metadata(&[("filename", "t.bin")]),
    )
    .await;
    let resp = tus_patch(&app, &url, &alice, 0, &bytes[..5000]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // Not bob's: he cannot see, feed or end it.
    let resp = tus(&app, "HEAD", &url, &bob).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = tus_patch(&app, &url, &bob, 5000, &bytes[5000..]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = tus(&app, "DELETE", &url, &bob).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let resp = tus(&app, "DELETE", &url, &alice).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    let resp = tus(&app, "HEAD", &url, &alice).send().await.unwrap();
    assert!(
        resp.status() == StatusCode::NOT_FOUND || resp.status() == StatusCode::GONE,
        "{}",
        resp.status()
    );
    let resp = tus_patch(&app, &url, &alice, 5000, &bytes[5000..]).await;
    assert!(
        resp.status() == StatusCode::NOT_FOUND || resp.status() == StatusCode::GONE,
        "{}",
        resp.status()
    );
    let resp = app.get(&format!("/v1/files/{id}"), Some(&alice)).await;
    assert_problem(resp, 404, "not_found").await;
    let limits = expect_status(app.get("/v1/limits", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(limits["usage"]["uploads_open"], 0, "{limits}");
}

#[tokio::test]
async fn tus_needs_the_version_header_and_a_token() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let (url, _) = tus_create(&app, &token, 10, &tus_metadata(&[("filename", "v.bin")])).await;

    // (method is HEAD, request)
    let without_version = [
        (
            false,
            app.client
                .post(app.url("/v1/tus"))
                .bearer_auth(&token)
                .header("Upload-Length", "10"),
        ),
        (true, app.client.head(&url).bearer_auth(&token)),
        (
            false,
            app.client
                .patch(&url)
                .bearer_auth(&token)
                .header("Upload-Offset", "0")
                .header("Content-Type", "application/offset+octet-stream")
                .body(vec![0u8; 10]),
        ),
        (false, app.client.delete(&url).bearer_auth(&token)),
    ];
    for (head, req) in without_version {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
        let versions = header(&resp, "tus-version").expect("Tus-Version on 412");
        assert!(versions.contains(TUS));
        if !head {
            // Bodies (not HEAD's) say it as a problem too.
            assert_problem(resp, 412, "unsupported_tus_version").await;
        }
    }
    let resp = app
        .client
        .post(app.url("/v1/tus"))
        .header("Tus-Resumable", "0.2.2")
        .bearer_auth(&token)
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 412, "unsupported_tus_version").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("0.2.2"),
        "an unsupported version, named: {problem}"
    );
    assert_eq!(tus_offset(&app, &url, &token).await, 0, "nothing happened");

    for (method, target) in [
        ("POST", app.url("/v1/tus")),
        ("HEAD", url.clone()),
        ("DELETE", url.clone()),
    ] {
        let resp = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                &target,
            )
            .header("Tus-Resumable", TUS)
            .header("Upload-Length", "10")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{method} without a token"
        );
    }
    let resp = tus(&app, "POST", "/v1/tus", &token).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "Upload-Length is required"
    );
}

#[tokio::test]
async fn tus_creation_checks_the_tier() {
    let app = spawn_app_with(|c| {
        c.tiers.basic.max_file_size = shutter_core::config::ByteSize(1000);
        c.tiers.basic.max_concurrent_uploads = 1;
    })
    .await;
    let (_, token) = user(&app, "alice").await;
    let resp = tus(&app, "POST", "/v1/tus", &token)
        .header("Upload-Length", "1001")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    let body = assert_problem(resp, 413, "file_too_large").await;
    assert_eq!(body["limit"]["name"], "max_file_size");
    tus_create(&app, &token, 1000, "").await;
    let resp = tus(&app, "POST", "/v1/tus", &token)
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 429, "too_many_uploads").await;
}

#[tokio::test]
async fn the_tickets_tus_url_resumes_the_same_file() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let photo = testdata("photos/onestandsout_1200x750.webp");
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("moss.webp", "image/webp", photo.len()),
    )
    .await;
    let id = id_of(&file);
    let url = ticket["tus_url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&format!("/v1/tus/{id}")), "{url}");
    let resp = tus(&app, "HEAD", &url, &token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header_u64(&resp, "upload-length"), photo.len() as u64);
    assert_eq!(header_u64(&resp, "upload-offset"), 0);
    let third = photo.len() / 3;
    let mut offset = 0;
    for part in [
        &photo[..third],
        &photo[third..2 * third],
        &photo[2 * third..],
    ] {
        let resp = tus_patch(&app, &url, &token, offset, part).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        offset += part.len();
        assert_eq!(header_u64(&resp, "upload-offset"), offset as u64);
    }
    let done: Value = wait_ready(&app, &token, &id).await;
    assert_eq!(done["width"], 1200);
    assert_eq!(done["height"], 750);
    assert_eq!(done["sha256"], sha256_hex(&photo));
    // The presigned PUT of the same file now conflicts (on the built-in store); on S3 the
    // bucket takes it where nothing reads it, and `complete` shows the file unchanged.
    let resp = put_ticket(&app, &ticket, photo.clone()).await;
    if is_direct_ticket(&app.address, &ticket) {
        let again = expect_status(resp, StatusCode::OK).await;
        assert_eq!(again["file"]["sha256"], sha256_hex(&photo), "{again}");
    } else {
        assert_problem(resp, 409, "conflict").await;
    }
}

#[tokio::test]
async fn a_tus_session_expires_with_the_upload_url_ttl() {
    let app = spawn_app_with(|c| {
        c.storage.upload_url_ttl = shutter_core::config::DurationValue::secs(1);
        c.storage.sweep_interval = shutter_core::config::DurationValue::secs(3600);
    })
    .await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(2000, 25);
    let (url, _) = tus_create(
        &app,
        &token,
        bytes.len(),
        &tus_metadata(&[("filename", "e.bin")]),
    )
    .await;
    let resp = tus_patch(&app, &url, &token, 0, &bytes[..1000]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let resp = tus(&app, "HEAD", &url, &token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    let resp = tus_patch(&app, &url, &token, 1000, &bytes[1000..]).await;
    assert_eq!(header(&resp, "tus-resumable").as_deref(), Some(TUS));
    assert_problem(resp, 410, "upload_expired").await;
}

/// A tus upload in PATCHes of several MiB each: the digests carried from one PATCH to the
/// next (MD5 partly hashed on another thread) end exactly the whole file's.
#[tokio::test]
async fn digests_carry_across_large_patches() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(7 * 1024 * 1024 + 777, 43);
    let metadata = tus_metadata(&[("filename", "big.bin"), ("sha256", &sha256_hex(&bytes))]);
    let (url, id) = tus_create(&app, &token, bytes.len(), &metadata).await;
    let cuts = [0, 3 * 1024 * 1024 + 5, 6 * 1024 * 1024 + 1, bytes.len()];
    for pair in cuts.windows(2) {
        let resp = tus_patch(&app, &url, &token, pair[0], &bytes[pair[0]..pair[1]]).await;
        assert_eq!(
            resp.status(),
            StatusCode::NO_CONTENT,
            "PATCH at {}",
            pair[0]
        );
    }
    let file = file_of(&app, Some(&token), &id).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!(file["md5"], md5_hex(&bytes));
    assert_eq!(file["sha256"], sha256_hex(&bytes));
}

/// PATCHes racing at the same offset: one wins, the others get 409, and the bytes kept are
/// the winner's — a PATCH that read the offset before the winner finished must not write
/// over the bytes the winner was told were kept. Several rounds, with the racers spread over
/// a few milliseconds so that some arrive while the winner is finishing.
#[tokio::test]
async fn patches_racing_at_one_offset_keep_the_winners_bytes() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    const HALF: usize = 64 * 1024;
    const RACERS: usize = 6;
    for round in 0..12u64 {
        let metadata =
            tus_metadata(&[("filename", "race.bin"), ("filetype", "application/x-test")]);
        let (url, id) = tus_create(&app, &token, 2 * HALF, &metadata).await;
        let bodies: Vec<Vec<u8>> = (0..RACERS as u64)
            .map(|i| pseudo_random(HALF, round * 100 + i))
            .collect();
        let racers = bodies.iter().enumerate().map(|(i, body)| {
            let (app, url, token) = (&app, &url, &token);
            async move {
                tokio::time::sleep(Duration::from_micros(700 * i as u64)).await;
                let resp = tus_patch(app, url, token, 0, body).await;
                (i, resp.status())
            }
        });
        let results = futures::future::join_all(racers).await;
        let winners: Vec<usize> = results
            .iter()
            .filter(|(_, s)| *s == StatusCode::NO_CONTENT)
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one PATCH wins: {results:?}"
        );
        for (i, status) in &results {
            if !winners.contains(i) {
                assert_eq!(*status, StatusCode::CONFLICT, "round {round}: racer {i}");
            }
        }
        assert_eq!(tus_offset(&app, &url, &token).await, HALF as u64);
        let rest = pseudo_random(HALF, 7);
        let resp = tus_patch(&app, &url, &token, HALF, &rest).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "round {round}");
        let mut expected = bodies[winners[0]].clone();
        expected.extend_from_slice(&rest);
        let done = file_of(&app, Some(&token), &id).await;
        assert_eq!(done["status"], "ready", "round {round}");
        assert_eq!(
            done["sha256"],
            sha256_hex(&expected),
            "round {round}: the winner's bytes"
        );
    }
}

/// Concatenation is not offered: `Upload-Concat` at creation is refused with a problem and
/// leaves no file behind, and `Tus-Extension` does not list it.
#[tokio::test]
async fn upload_concat_is_refused_and_leaves_no_file() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let resp = app
        .request(reqwest::Method::OPTIONS, "/v1/tus")
        .send()
        .await
        .unwrap();
    let extensions = header(&resp, "tus-extension").unwrap();
    assert!(
        !extensions.split(',').any(|e| e.trim() == "concatenation"),
        "{extensions}"
    );
    for concat in ["partial", "final;/v1/tus/a /v1/tus/b"] {
        let resp = tus(&app, "POST", "/v1/tus", &token)
            .header("Upload-Length", "100")
            .header("Upload-Metadata", tus_metadata(&[("filename", "part.bin")]))
            .header("Upload-Concat", concat)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(resp, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "Upload-Concat", "{problem}");
    }
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        limits["usage"]["uploads_open"], 0,
        "no file was made: {limits}"
    );
}

/// `Tus-Max-Size` is the caller's tier limit, the largest one without a token; a creation
/// past the caller's limit is 413.
#[tokio::test]
async fn tus_max_size_follows_the_callers_tier() {
    let app = spawn_app_with(|c| {
        c.tiers.basic.max_file_size = shutter_core::config::ByteSize(1000);
        c.tiers.premium.max_file_size = shutter_core::config::ByteSize(5000);
    })
    .await;
    let (_, basic) = user(&app, "basic").await;
    let (_, premium) = user(&app, "rich").await;
    app.set_tier_cli("rich", "premium").await;
    let max_size = |token: Option<String>| {
        let mut req = app.request(reqwest::Method::OPTIONS, "/v1/tus");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move { header_u64(&req.send().await.unwrap(), "tus-max-size") }
    };
    assert_eq!(
        max_size(None).await,
        5000,
        "anonymous: the largest tier limit"
    );
    assert_eq!(max_size(Some(basic.clone())).await, 1000);
    assert_eq!(max_size(Some(premium.clone())).await, 5000);

    let create = |token: String, length: u64| {
        let req = tus(&app, "POST", "/v1/tus", &token)
            .header("Upload-Length", length.to_string())
            .header("Upload-Metadata", tus_metadata(&[("filename", "big.bin")]));
        async move { req.send().await.unwrap() }
    };
    let problem = assert_problem(create(basic.clone(), 1001).await, 413, "file_too_large").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1000"),
        "{problem}"
    );
    assert_eq!(create(basic, 1000).await.status(), StatusCode::CREATED);
    assert_eq!(
        create(premium.clone(), 5000).await.status(),
        StatusCode::CREATED
    );
    assert_problem(create(premium, 5001).await, 413, "file_too_large").await;
}
