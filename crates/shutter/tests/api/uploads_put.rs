//! Uploading with the presigned ticket (SPEC 4): the happy path with real photographs, every
//! way an upload fails (each leaving the file `failed` with its code and no bytes), the
//! signature and expiry of the URL, a second upload, and an upload that breaks off.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::upload_helpers::*;

#[tokio::test]
async fn completing_someone_elses_file_is_forbidden_when_public_and_not_found_when_private() {
    let app = spawn_local_storage_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let bytes = b"shared notes".to_vec();
    let mut body = file_request("notes.txt", "text/plain", bytes.len());
    body["visibility"] = json!("public");
    let public = upload_with(&app, &alice, body, &bytes).await;
    let private = upload(&app, &alice, "diary.txt", "text/plain", &bytes).await;

    // Bob can see the public file, so he is told he may not complete it.
    let path = format!("/v1/files/{}/complete", id_of(&public));
    assert_problem(
        app.post_json(&path, Some(&bob), &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    // The private one does not exist for him.
    let path = format!("/v1/files/{}/complete", id_of(&private));
    assert_problem(
        app.post_json(&path, Some(&bob), &json!({})).await,
        404,
        "not_found",
    )
    .await;
    // The owner gets the file, variants and all, like `GET /v1/files/{id}`.
    let resp = app.post_json(&path, Some(&alice), &json!({})).await;
    let completed = expect_status(resp, StatusCode::OK).await;
    assert_eq!(completed["file"]["id"], private["id"]);
    assert_eq!(completed["file"]["status"], "ready");
}

#[tokio::test]
async fn a_photo_uploads_with_the_ticket_and_is_ready_with_its_dimensions() {
    let app = spawn_local_storage_app().await;
    let (alice_id, token) = user(&app, "alice").await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let mut body = file_request("kleiber.jpg", "image/jpeg", photo.len());
    body["sha256"] = json!(sha256_hex(&photo));
    body["md5"] = json!(md5_hex(&photo));
    let (file, ticket) = create_file(&app, &token, &body).await;
    let id = id_of(&file);

    let resp = put_ticket(&app, &ticket, photo.clone()).await;
    let done = expect_status(resp, StatusCode::OK).await["file"].clone();
    assert_eq!(done["sha256"], sha256_hex(&photo));
    let done = settled(&app, &token, &done).await;
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["owner_id"], alice_id.as_str());
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["size"], photo.len());
    assert_eq!(done["bytes_received"], photo.len());
    assert_eq!(done["sha256"], sha256_hex(&photo));
    assert_eq!(done["md5"], md5_hex(&photo));
    assert_eq!(done["width"], 1080, "{done}");
    assert_eq!(done["height"], 1080, "{done}");
    assert!(done["failure"].is_null());
    let url = done["url"].as_str().expect("a ready file has a url");
    assert!(
        url.starts_with(&format!("{}/v1/files/{id}/content?", app.address)),
        "{url}"
    );

    let shown = file_of(&app, Some(&token), &id).await;
    assert_eq!(shown["status"], "ready");
    assert_eq!(shown["width"], 1080);
    assert_eq!(shown["sha256"], sha256_hex(&photo));

    assert_eq!(download(&app, Some(&token), &id).await, photo);
    let resp = app.client.get(url).send().await.unwrap();
    let resp = follow_to_bucket(&app.client, resp).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        photo,
        "the signed URL serves the bytes"
    );

    // `complete` on the built-in store simply returns the file; only the owner may call it.
    let resp = app
        .post_json(
            &format!("/v1/files/{id}/complete"),
            Some(&token),
            &json!({}),
        )
        .await;
    let completed = expect_status(resp, StatusCode::OK).await;
    assert_eq!(completed["file"]["id"], id.as_str());
    assert_eq!(completed["file"]["status"], "ready");
    let resp = app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/files/{id}/complete"),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "an empty body is fine too");
    let (_, bob) = user(&app, "bob").await;
    let resp = app
        .post_json(&format!("/v1/files/{id}/complete"), Some(&bob), &json!({}))
        .await;
    assert_problem(resp, 404, "not_found").await;
    let resp = app
        .post_json(&format!("/v1/files/{id}/complete"), None, &json!({}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;

    // A second PUT to a finished file is a conflict and changes nothing.
    let resp = put_ticket(&app, &ticket, photo.clone()).await;
    assert_problem(resp, 409, "conflict").await;
    let resp = put_ticket(&app, &ticket, b"other bytes".to_vec()).await;
    assert_problem(resp, 409, "conflict").await;
    let after = file_of(&app, Some(&token), &id).await;
    assert_eq!(after["status"], "ready");
    assert_eq!(download(&app, Some(&token), &id).await, photo);
}

#[tokio::test]
async fn real_photos_report_their_displayed_dimensions() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let photos: [(&str, &str, u32, u32); 8] = [
        ("path_exif_orientation6_gps.jpg", "image/jpeg", 1000, 1600),
        ("path_progressive_1600x1000.jpg", "image/jpeg", 1600, 1000),
        ("path_cmyk_1600x1000.jpg", "image/jpeg", 1600, 1000),
        ("kleiber_12mp_4000x3000.jpg", "image/jpeg", 4000, 3000),
        ("path_gray_1200x750.png", "image/png", 1200, 750),
        (
            "onestandsout_16bit_alpha_1200x750.png",
            "image/png",
            1200,
            750,
        ),
        ("onestandsout_1200x750.webp", "image/webp", 1200, 750),
        ("kleiber_12mp_4000x3000.webp", "image/webp", 4000, 3000),
    ];
    for (name, content_type, width, height) in photos {
        let bytes = testdata(&format!("photos/{name}"));
        let file = upload(&app, &token, name, content_type, &bytes).await;
        assert_eq!(file["width"], width, "{name}: {file}");
        assert_eq!(file["height"], height, "{name}: {file}");
        assert_eq!(file["content_type"], content_type);
        let back = download(&app, Some(&token), &id_of(&file)).await;
        assert_eq!(
            sha256_hex(&back),
            sha256_hex(&bytes),
            "{name} comes back unchanged"
        );
    }
}

#[tokio::test]
async fn fewer_bytes_than_declared_is_size_mismatch() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("short.bin", "application/octet-stream", 100),
    )
    .await;
    let resp = put_ticket(&app, &ticket, pseudo_random(60, 1)).await;
    let body = assert_problem(resp, 422, "size_mismatch").await;
    assert!(body["detail"].as_str().unwrap().contains("60"), "{body}");
    assert_failed(&app, &token, &id_of(&file), "size_mismatch").await;

    // An empty JPEG against a declared size is short, too.
    let empty = testdata("hostile/empty.jpg");
    assert!(empty.is_empty());
    let (file, ticket) =
        create_file(&app, &token, &file_request("empty.jpg", "image/jpeg", 100)).await;
    let resp = put_ticket(&app, &ticket, empty).await;
    assert_problem(resp, 422, "size_mismatch").await;
    assert_failed(&app, &token, &id_of(&file), "size_mismatch").await;
}

#[tokio::test]
async fn more_bytes_than_declared_is_file_too_large() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;

    // Content-Length over the declared size: refused at once.
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("long.bin", "application/octet-stream", 100),
    )
    .await;
    let resp = put_ticket(&app, &ticket, pseudo_random(101, 1)).await;
    let body = assert_problem(resp, 413, "file_too_large").await;
    assert_eq!(body["limit"]["value"], 100, "{body}");
    assert!(body["limit"]["actual"].as_u64().unwrap() > 100, "{body}");
    assert_failed(&app, &token, &id_of(&file), "file_too_large").await;

    // No Content-Length (chunked): stopped the moment the bytes pass the declared size.
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("long.bin", "application/octet-stream", 100_000),
    )
    .await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..20)
        .map(|i| Ok(Bytes::from(pseudo_random(10_000, i))))
        .collect();
    let resp = ticket_request(&app, &ticket)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413, "file_too_large").await;
    assert_failed(&app, &token, &id_of(&file), "file_too_large").await;
}

#[tokio::test]
async fn declared_checksums_are_checked() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(5000, 3);
    let other = pseudo_random(5000, 4);

    for (field, wrong, right) in [
        ("sha256", sha256_hex(&other), sha256_hex(&bytes)),
        ("md5", md5_hex(&other), md5_hex(&bytes)),
    ] {
        let mut body = file_request("sum.bin", "application/octet-stream", bytes.len());
        body[field] = json!(wrong);
        let (file, ticket) = create_file(&app, &token, &body).await;
        let resp = put_ticket(&app, &ticket, bytes.clone()).await;
        let problem = assert_problem(resp, 422, "checksum_mismatch").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "the detail names {field}: {problem}"
        );
        assert_failed(&app, &token, &id_of(&file), "checksum_mismatch").await;

        let mut body = file_request("sum.bin", "application/octet-stream", bytes.len());
        body[field] = json!(right.to_uppercase());
        let done = upload_with(&app, &token, body, &bytes).await;
        assert_eq!(done[field], right, "{done}");
    }
    // Both declared, one wrong.
    let mut body = file_request("sum.bin", "application/octet-stream", bytes.len());
    body["sha256"] = json!(sha256_hex(&bytes));
    body["md5"] = json!(md5_hex(&other));
    let (file, ticket) = create_file(&app, &token, &body).await;
    let resp = put_ticket(&app, &ticket, bytes.clone()).await;
    assert_problem(resp, 422, "checksum_mismatch").await;
    assert_failed(&app, &token, &id_of(&file), "checksum_mismatch").await;
}

#[tokio::test]
async fn bytes_that_are_not_the_declared_image_type_are_content_mismatch() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let cases: [(&str, &str, &str); 5] = [
        ("hostile/text_named.jpg", "image/jpeg", "plain text as JPEG"),
        ("hostile/png_named.jpg", "image/jpeg", "a PNG as JPEG"),
        ("hostile/empty.jpg", "image/jpeg", "zero bytes as JPEG"),
        (
            "hostile/polyglot_gif_html.gif",
            "image/gif",
            "a GIF/HTML polyglot as GIF",
        ),
        ("photos/kleiber_1080x1080.jpg", "image/png", "a JPEG as PNG"),
    ];
    for (path, content_type, what) in cases {
        let bytes = testdata(path);
        let name = path.rsplit('/').next().unwrap();
        let (file, ticket) =
            create_file(&app, &token, &file_request(name, content_type, bytes.len())).await;
        let resp = put_ticket(&app, &ticket, bytes).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["code"], "content_mismatch", "{what}: {body}");
        assert_failed(&app, &token, &id_of(&file), "content_mismatch").await;
    }
    // Types that are not images are not sniffed: the same text is a fine text file.
    let text = testdata("hostile/text_named.jpg");
    let file = upload(&app, &token, "text_named.jpg", "text/plain", &text).await;
    assert!(
        file.get("width").is_none() || file["width"].is_null(),
        "{file}"
    );
    // An animated GIF is a fine GIF file.
    let gif = testdata("hostile/animated.gif");
    upload(&app, &token, "animated.gif", "image/gif", &gif).await;
}

#[tokio::test]
async fn image_headers_over_the_pixel_limit_are_image_too_large() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    for (path, content_type) in [
        ("hostile/bomb_20000x20000.png", "image/png"),
        ("hostile/header_bomb_65000x65000.jpg", "image/jpeg"),
    ] {
        let bytes = testdata(path);
        let (file, ticket) = create_file(
            &app,
            &token,
            &file_request(path.rsplit('/').next().unwrap(), content_type, bytes.len()),
        )
        .await;
        let resp = put_ticket(&app, &ticket, bytes).await;
        assert_problem(resp, 422, "image_too_large").await;
        assert_failed(&app, &token, &id_of(&file), "image_too_large").await;
    }
    // The server is healthy after the bombs.
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    upload(&app, &token, "ok.jpg", "image/jpeg", &photo).await;

    // The limit is `media.max_pixels`: 1080×1080 is over a million.
    let small = spawn_local_storage_app_with(|c| c.media.max_pixels = 1_000_000).await;
    let (_, token) = user(&small, "alice").await;
    let (file, ticket) = create_file(
        &small,
        &token,
        &file_request("k.jpg", "image/jpeg", photo.len()),
    )
    .await;
    let resp = put_ticket(&small, &ticket, photo.clone()).await;
    assert_problem(resp, 422, "image_too_large").await;
    assert_failed(&small, &token, &id_of(&file), "image_too_large").await;
    let square = testdata("photos/path_gray_1200x750.png");
    assert_eq!(1200 * 750, 900_000);
    upload(&small, &token, "fits.png", "image/png", &square).await;
}

/// SPEC 1: "A limit error also names the limit … (on … `image_too_large` …)".
#[tokio::test]
async fn image_too_large_names_the_pixel_limit() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = testdata("hostile/bomb_20000x20000.png");
    let (_, ticket) = create_file(
        &app,
        &token,
        &file_request("bomb.png", "image/png", bytes.len()),
    )
    .await;
    let resp = put_ticket(&app, &ticket, bytes).await;
    let body = assert_problem(resp, 422, "image_too_large").await;
    assert_eq!(body["limit"]["name"], "max_pixels", "{body}");
    assert_eq!(body["limit"]["value"], 100_000_000, "{body}");
    assert_eq!(body["limit"]["actual"], 400_000_000u64, "{body}");
}

#[tokio::test]
async fn a_tampered_or_mismatched_upload_url_is_invalid_signature() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = testdata("photos/kleiber_1080x1080.jpg");
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("k.jpg", "image/jpeg", bytes.len()),
    )
    .await;
    let (other, _) = create_file(
        &app,
        &token,
        &file_request("o.jpg", "image/jpeg", bytes.len()),
    )
    .await;
    let id = id_of(&file);
    let url = ticket["url"].as_str().unwrap().to_owned();
    let put = |url: String, content_type: Option<&'static str>| {
        let mut req = app.client.put(url);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.body(bytes.clone()).send()
    };

    let expires: i64 = url
        .split("expires=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .and_then(|e| e.parse().ok())
        .unwrap();
    let without_sig = url.split("&sig=").next().unwrap().to_owned();
    let bad_urls = vec![
        tamper_sig(&url),
        url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        ),
        without_sig.clone(),
        format!("{}/v1/files/{id}/content", app.address),
        url.replace(&id, &id_of(&other)),
    ];
    for bad in bad_urls {
        let resp = put(bad.clone(), Some("image/jpeg")).await.unwrap();
        assert_problem(resp, 403, "invalid_signature").await;
    }
    // The signed content type is the declared one.
    let resp = put(url.clone(), Some("image/png")).await.unwrap();
    assert_problem(resp, 403, "invalid_signature").await;
    let resp = put(url.clone(), Some("text/html")).await.unwrap();
    assert_problem(resp, 403, "invalid_signature").await;

    // None of that touched the file: it still waits for its bytes, and the real URL works
    // (without a Content-Type as well).
    let still = file_of(&app, Some(&token), &id).await;
    assert_eq!(still["status"], "pending", "{still}");
    assert_eq!(still["bytes_received"], 0);
    let resp = put(url, None).await.unwrap();
    let done = expect_status(resp, StatusCode::OK).await;
    settled(&app, &token, &done["file"]).await;
    assert_eq!(download(&app, Some(&token), &id).await, bytes);
}

#[tokio::test]
async fn an_upload_url_past_its_expiry_is_upload_expired() {
    let app = spawn_local_storage_app_with(|c| {
        c.storage.upload_url_ttl = shutter_core::config::DurationValue::secs(1);
        c.storage.sweep_interval = shutter_core::config::DurationValue::secs(3600);
    })
    .await;
    let (_, token) = user(&app, "alice").await;
    let bytes = b"too late".to_vec();
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("late.txt", "text/plain", bytes.len()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let resp = put_ticket(&app, &ticket, bytes).await;
    assert_problem(resp, 410, "upload_expired").await;
    let after = file_of(&app, Some(&token), &id_of(&file)).await;
    assert_ne!(after["status"], "ready", "{after}");
    let resp = app
        .get(&format!("/v1/files/{}/content", id_of(&file)), Some(&token))
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn the_sweeper_fails_abandoned_uploads_with_upload_expired() {
    let app = spawn_local_storage_app_with(|c| {
        c.storage.upload_url_ttl = shutter_core::config::DurationValue::secs(1);
        c.storage.sweep_interval = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(64 * 1024, 9);
    // One never started, one left half-way through tus.
    let (never, ticket) = create_file(
        &app,
        &token,
        &file_request("never.bin", "application/octet-stream", 10),
    )
    .await;
    let (tus_url, half) = tus_create(
        &app,
        &token,
        bytes.len(),
        &tus_metadata(&[("filename", "half.bin")]),
    )
    .await;
    let resp = tus_patch(&app, &tus_url, &token, 0, &bytes[..1000]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["usage"]["uploads_open"], 2, "{limits}");

    for id in [id_of(&never), half] {
        let file = wait_for_file(&app, &token, &id, Duration::from_secs(6), |f| {
            f["status"] == "failed"
        })
        .await;
        assert_eq!(file["failure"]["code"], "upload_expired", "{file}");
        assert_failed(&app, &token, &id, "upload_expired").await;
    }
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        limits["usage"]["uploads_open"], 0,
        "expired uploads are not open: {limits}"
    );
    assert_eq!(limits["usage"]["bytes_stored"], 0, "{limits}");
    let resp = put_ticket(&app, &ticket, vec![0; 10]).await;
    assert_ne!(
        resp.status(),
        StatusCode::OK,
        "an expired upload takes no bytes"
    );
}

#[tokio::test]
async fn an_upload_that_breaks_off_puts_the_file_back_to_pending() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(256 * 1024, 5);
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("flaky.bin", "application/octet-stream", bytes.len()),
    )
    .await;
    let id = id_of(&file);

    // Half the bytes, then the body fails and the client drops the connection.
    let half = bytes[..128 * 1024].to_vec();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(half)),
        Err(std::io::Error::other("the client gave up")),
    ];
    let result = ticket_request(&app, &ticket)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(resp) = result {
        assert_ne!(
            resp.status(),
            StatusCode::OK,
            "a broken body is not a success"
        );
    }
    let paused = wait_for_file(&app, &token, &id, Duration::from_secs(5), |f| {
        f["status"] == "pending"
    })
    .await;
    assert_eq!(
        paused["bytes_received"], 0,
        "nothing half-written is kept: {paused}"
    );
    let resp = app
        .get(&format!("/v1/files/{id}/content"), Some(&token))
        .await;
    assert_problem(resp, 404, "not_found").await;

    // The same URL takes the whole file.
    let resp = put_ticket(&app, &ticket, bytes.clone()).await;
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["status"], "ready");
    assert_eq!(done["file"]["sha256"], sha256_hex(&bytes));
    assert_eq!(download(&app, Some(&token), &id).await, bytes);
}

#[tokio::test]
async fn a_second_upload_while_one_is_running_is_a_conflict() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(200_000, 6);
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("busy.bin", "application/octet-stream", bytes.len()),
    )
    .await;
    let id = id_of(&file);
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let first = tokio::spawn(
        ticket_request(&app, &ticket)
            .body(reqwest::Body::wrap_stream(rx))
            .send(),
    );
    let mut tx = tx;
    use futures::SinkExt;
    tx.send(Ok(Bytes::copy_from_slice(&bytes[..100_000])))
        .await
        .unwrap();
    wait_for_file(&app, &token, &id, Duration::from_secs(5), |f| {
        f["status"] == "uploading"
    })
    .await;
    let resp = put_ticket(&app, &ticket, bytes.clone()).await;
    assert_problem(resp, 409, "conflict").await;

    tx.send(Ok(Bytes::copy_from_slice(&bytes[100_000..])))
        .await
        .unwrap();
    drop(tx);
    let resp = first.await.unwrap().unwrap();
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["sha256"], sha256_hex(&bytes));
    assert_eq!(download(&app, Some(&token), &id).await, bytes);
}

/// Uploads of several MiB are hashed partly on another thread (MD5, a batch at a time): the
/// stored digests must still be exactly the bytes' own, with a declared MD5 checked too.
#[tokio::test]
async fn a_multi_megabyte_upload_gets_exact_digests() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    // Not a whole number of batches or chunks.
    let bytes = pseudo_random(5 * 1024 * 1024 + 12_345, 41);
    let mut body = file_request("data.bin", "application/octet-stream", bytes.len());
    body["md5"] = json!(md5_hex(&bytes));
    body["sha256"] = json!(sha256_hex(&bytes));
    let done = upload_with(&app, &token, body, &bytes).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["md5"], md5_hex(&bytes));
    assert_eq!(done["sha256"], sha256_hex(&bytes));
    assert_eq!(
        download(&app, Some(&token), done["id"].as_str().unwrap()).await,
        bytes
    );

    // A declared MD5 that is off fails the upload, however large.
    let mut body = file_request("data.bin", "application/octet-stream", bytes.len());
    body["md5"] = json!(md5_hex(b"other bytes"));
    let (file, ticket) = create_file(&app, &token, &body).await;
    let resp = put_ticket(&app, &ticket, bytes.clone()).await;
    assert_problem(resp, 422, "checksum_mismatch").await;
    assert_failed(
        &app,
        &token,
        file["id"].as_str().unwrap(),
        "checksum_mismatch",
    )
    .await;
}
