//! Uploads and downloads straight to and from the bucket on S3 storage (SPEC 4): the ticket
//! is a presigned `PUT` of the bucket (or presigned multipart parts), `complete` checks the
//! bytes exactly as a local upload is checked, and private downloads redirect to a
//! presigned `GET`. Each test gets its own bucket on the S3 server `SHUTTER_TEST_S3_*` names
//! (s3s-fs in CI, which checks SigV4 signatures and expiry); without it the tests fail.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shutter_core::config::Config;

use crate::backend::{data_dir_on, Database, Storage};
use crate::photo_helpers::bytes_kept;

use crate::helpers::{assert_problem, expect_status, header, id_of, start, test_config, TestApp};
use crate::upload_helpers::{
    create_file, file_of, pseudo_random, settled, sha256_hex, testdata, ticket_request, user,
};

/// A server on the run's database with its objects in a bucket of its own.
async fn s3_app(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = data_dir_on(Database::Requested, Storage::S3).await;
    let mut config = test_config(dir.path());
    configure(&mut config);
    start(config, dir).await
}

fn endpoint() -> String {
    std::env::var("SHUTTER_TEST_S3_ENDPOINT").expect("SHUTTER_TEST_S3_ENDPOINT")
}

/// `PUT` to a ticket URL of the bucket, with the ticket's headers and no Authorization.
async fn put_to_bucket(app: &TestApp, ticket: &Value, bytes: Vec<u8>) -> reqwest::Response {
    ticket_request(app, ticket)
        .body(bytes)
        .send()
        .await
        .expect("PUT to the bucket")
}

/// Creates a file and sends its bytes to the ticket's URL, which must take them; returns
/// the file's id and its ticket. Nothing is checked until `complete`.
async fn create_and_put(app: &TestApp, token: &str, body: &Value, bytes: &[u8]) -> (String, Value) {
    let (file, ticket) = create_file(app, token, body).await;
    let resp = put_to_bucket(app, &ticket, bytes.to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK, "the bucket takes the bytes");
    (id_of(&file), ticket)
}

async fn complete(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.post_json(&format!("/v1/files/{id}/complete"), Some(token), &body)
        .await
}

/// The owner's download, following the redirect to the bucket like any HTTP client.
async fn download_via_bucket(
    app: &TestApp,
    token: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let resp = app.get(path, Some(token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::FOUND,
        "a private download redirects"
    );
    let location = header(&resp, "location").expect("Location");
    assert!(
        location.starts_with(&endpoint()),
        "{location} points at the bucket"
    );
    assert_eq!(
        header(&resp, "cache-control").as_deref(),
        Some("private, no-store")
    );
    let mut req = app.client.get(&location);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.send().await.expect("GET from the bucket")
}

#[tokio::test]
async fn a_presigned_put_then_complete_stores_and_serves_the_file() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(300_000, 7);
    let body = json!({"filename": "report.pdf", "size": bytes.len(), "content_type": "application/pdf",
        "sha256": sha256_hex(&bytes)});
    let (file, ticket) = create_file(&app, &token, &body).await;
    let id = id_of(&file);
    let url = ticket["url"].as_str().unwrap();
    assert!(
        url.starts_with(&endpoint()),
        "the ticket points at the bucket: {url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(ticket["headers"]["Content-Type"], "application/pdf");
    assert!(ticket.get("multipart").is_none(), "{ticket}");

    let resp = put_to_bucket(&app, &ticket, bytes.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text().await);
    // Not checked yet: the file waits for `complete`.
    let before = file_of(&app, Some(&token), &id).await;
    assert_eq!(before["status"], "pending", "{before}");
    assert_eq!(before["bytes_received"], bytes.len(), "{before}");

    let done = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    let done = &done["file"];
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["sha256"], sha256_hex(&bytes), "{done}");
    assert!(done["url"].is_string(), "{done}");

    // A second complete answers with the file; nothing changes.
    let again = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    assert_eq!(again["file"]["status"], "ready");

    let path = format!("/v1/files/{id}/content");
    let resp = download_via_bucket(&app, &token, &path, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/pdf")
    );
    let disposition = header(&resp, "content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"report.pdf\""),
        "{disposition}"
    );
    let etag = header(&resp, "etag").expect("an ETag from the bucket");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // Range, answered by the bucket. (So is If-None-Match, by stores that implement it for
    // GET: AWS and MinIO do, the s3s-fs of these tests does not.)
    assert!(!etag.is_empty());
    let resp = download_via_bucket(&app, &token, &path, &[("range", "bytes=100-199")]).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        bytes[100..200].to_vec()
    );

    // The signed URL of the file view redirects the same way, without a token.
    let signed = done["url"].as_str().unwrap();
    let resp = app.client.get(signed).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn verified_bytes_cannot_be_replaced_through_a_ticket_that_is_still_valid() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(50_000, 1);
    let body = json!({"filename": "a.bin", "size": bytes.len(), "content_type": "application/octet-stream"});
    let (id, ticket) = create_and_put(&app, &token, &body, &bytes).await;
    expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;

    // The URL has not expired: the bucket takes another PUT of the same size...
    let other = pseudo_random(50_000, 2);
    let resp = put_to_bucket(&app, &ticket, other.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // ...but it lands where nothing reads it: the file still has its verified bytes.
    let path = format!("/v1/files/{id}/content");
    let resp = download_via_bucket(&app, &token, &path, &[]).await;
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
    let again = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    assert_eq!(again["file"]["sha256"], sha256_hex(&bytes));
}

#[tokio::test]
async fn a_ticket_url_is_signed_for_its_type_and_length() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(10_000, 3);
    let body = json!({"filename": "a.txt", "size": bytes.len(), "content_type": "text/plain"});
    let (file, ticket) = create_file(&app, &token, &body).await;
    let url = ticket["url"].as_str().unwrap();

    let wrong_type = app
        .client
        .put(url)
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    // The signature covers the type and the length: the bucket refuses either changed (s3s
    // with 400 or 403, as AWS does depending on the header).
    assert!(
        wrong_type.status().is_client_error(),
        "{}",
        wrong_type.status()
    );
    let longer = put_to_bucket(&app, &ticket, pseudo_random(10_001, 3)).await;
    assert!(longer.status().is_client_error(), "{}", longer.status());
    let at = url.find("X-Amz-Signature=").expect("a signature") + "X-Amz-Signature=".len();
    let flipped = if &url[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let resp = app
        .client
        .put(&tampered)
        .header("content-type", "text/plain")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // None of them stored anything: complete finds no bytes.
    let id = id_of(&file);
    assert_no_bytes_yet(&app, &token, &id).await;
}

#[tokio::test]
async fn an_expired_ticket_url_is_refused_by_the_bucket() {
    let app = s3_app(|config| {
        config.storage.upload_url_ttl = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(1_000, 4);
    let body = json!({"filename": "a.txt", "size": bytes.len(), "content_type": "text/plain"});
    let (file, ticket) = create_file(&app, &token, &body).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let resp = put_to_bucket(&app, &ticket, bytes).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = resp.text().await.unwrap();
    assert!(text.contains("xpired"), "{text}");
    let resp = complete(&app, &token, &id_of(&file), json!({})).await;
    assert_problem(resp, 410, "upload_expired").await;
}

#[tokio::test]
async fn completing_before_the_bytes_arrive_is_a_conflict_and_changes_nothing() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(2_000, 5);
    let body = json!({"filename": "a.txt", "size": bytes.len(), "content_type": "text/plain"});
    let (file, ticket) = create_file(&app, &token, &body).await;
    let id = id_of(&file);
    assert_no_bytes_yet(&app, &token, &id).await;

    // Someone else's file is not found, whatever its state.
    let (_, other) = user(&app, "kim").await;
    assert_problem(
        complete(&app, &other, &id, json!({})).await,
        404,
        "not_found",
    )
    .await;

    assert_eq!(
        put_to_bucket(&app, &ticket, bytes.clone()).await.status(),
        StatusCode::OK
    );
    let done = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    assert_eq!(done["file"]["status"], "ready");
}

#[tokio::test]
async fn a_checksum_mismatch_fails_the_file_and_deletes_the_bytes() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(20_000, 6);
    let body = json!({"filename": "a.bin", "size": bytes.len(), "content_type": "application/octet-stream",
        "sha256": sha256_hex(b"something else")});
    let (id, _ticket) = create_and_put(&app, &token, &body, &bytes).await;
    assert_problem(
        complete(&app, &token, &id, json!({})).await,
        422,
        "checksum_mismatch",
    )
    .await;
    let failed = file_of(&app, Some(&token), &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure"]["code"], "checksum_mismatch");
    assert!(
        !bytes_kept(app.data_dir.path(), &id).await,
        "the bucket keeps nothing of a failed upload"
    );
    // Completing a failed upload again answers with the file and why it failed.
    let again = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    assert_eq!(
        again["file"]["failure"]["code"], "checksum_mismatch",
        "{again}"
    );
}

#[tokio::test]
async fn content_that_is_not_the_declared_image_fails_with_content_mismatch() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = b"this is not a JPEG at all, just text".to_vec();
    let body = json!({"filename": "a.jpg", "size": bytes.len(), "content_type": "image/jpeg"});
    let (file, ticket) = create_file(&app, &token, &body).await;
    assert_eq!(
        put_to_bucket(&app, &ticket, bytes).await.status(),
        StatusCode::OK
    );
    let resp = complete(&app, &token, &id_of(&file), json!({})).await;
    assert_problem(resp, 422, "content_mismatch").await;
}

#[tokio::test]
async fn a_photo_uploaded_to_the_bucket_is_processed_into_variants() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = testdata("photos/kleiber_1080x1080.jpg");
    let body = json!({"filename": "bird.jpg", "size": bytes.len(), "content_type": "image/jpeg"});
    let (id, _ticket) = create_and_put(&app, &token, &body, &bytes).await;
    let done = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    let ready = settled(&app, &token, &done["file"]).await;
    assert_eq!(ready["width"], 1080, "{ready}");
    for variant in ["thumb", "w640", "w1080"] {
        let path = format!("/v1/files/{id}/content?variant={variant}");
        let resp = download_via_bucket(&app, &token, &path, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{variant}");
        assert_eq!(header(&resp, "content-type").as_deref(), Some("image/jpeg"));
        let jpeg = resp.bytes().await.unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "{variant} is a JPEG");
    }
    assert!(bytes_kept(app.data_dir.path(), &id).await);
}

#[tokio::test]
async fn large_files_upload_in_presigned_parts_and_show_their_progress() {
    let app = s3_app(|config| {
        config.storage.multipart_threshold = shutter_core::config::ByteSize(10 * 1024 * 1024);
    })
    .await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(20 * 1024 * 1024 + 123, 8);
    let body = json!({"filename": "big.bin", "size": bytes.len(), "content_type": "application/octet-stream",
        "sha256": sha256_hex(&bytes)});
    let (file, ticket) = create_file(&app, &token, &body).await;
    let id = id_of(&file);
    let multipart = &ticket["multipart"];
    let part_size = multipart["part_size"].as_u64().expect("part_size") as usize;
    let parts = multipart["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), bytes.len().div_ceil(part_size), "{multipart}");
    assert_eq!(
        multipart["complete_url"],
        app.url(&format!("/v1/files/{id}/complete"))
    );

    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["number"], i + 1);
        let chunk = bytes[i * part_size..((i + 1) * part_size).min(bytes.len())].to_vec();
        let resp = app
            .client
            .put(part["url"].as_str().unwrap())
            .body(chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "part {}", i + 1);
        etags.push(json!({"number": i + 1, "etag": header(&resp, "etag").expect("ETag")}));
        if i == 0 {
            // Progress from the parts the bucket lists.
            let now = file_of(&app, Some(&token), &id).await;
            assert_eq!(now["bytes_received"], part_size, "{now}");
        }
    }
    let done = expect_status(
        complete(&app, &token, &id, json!({"parts": etags})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["file"]["status"], "ready", "{done}");
    assert_eq!(done["file"]["sha256"], sha256_hex(&bytes));
    let path = format!("/v1/files/{id}/content");
    let resp =
        download_via_bucket(&app, &token, &path, &[("range", "bytes=10485755-10485765")]).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        bytes[10485755..=10485765].to_vec()
    );
}

#[tokio::test]
async fn a_multipart_upload_completes_with_the_parts_the_bucket_lists() {
    let app = s3_app(|config| {
        config.storage.multipart_threshold = shutter_core::config::ByteSize(1024 * 1024);
    })
    .await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(9 * 1024 * 1024, 9);
    let body = json!({"filename": "big.bin", "size": bytes.len(), "content_type": "application/octet-stream"});
    let (file, ticket) = create_file(&app, &token, &body).await;
    let id = id_of(&file);
    let part_size = ticket["multipart"]["part_size"].as_u64().unwrap() as usize;
    let parts = ticket["multipart"]["parts"].as_array().unwrap().clone();
    // Only the first part: not all bytes are there.
    let first = bytes[..part_size].to_vec();
    let resp = app
        .client
        .put(parts[0]["url"].as_str().unwrap())
        .body(first)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = complete(&app, &token, &id, json!({})).await;
    assert_problem(resp, 422, "size_mismatch").await;
    assert_eq!(file_of(&app, Some(&token), &id).await["status"], "failed");
}

#[tokio::test]
async fn public_files_keep_a_stable_url_served_by_shutter() {
    let app = s3_app(|_| {}).await;
    let (_, token) = user(&app, "sam").await;
    let bytes = pseudo_random(5_000, 10);
    let body = json!({"filename": "a.txt", "size": bytes.len(), "content_type": "text/plain", "visibility": "public"});
    let (id, _ticket) = create_and_put(&app, &token, &body, &bytes).await;
    let done = expect_status(complete(&app, &token, &id, json!({})).await, StatusCode::OK).await;
    let url = done["file"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.address), "{url}");
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "cache-control").as_deref(),
        Some("public, max-age=3600")
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
}

/// `complete` finds no bytes: 409 `conflict`, and the file is still `pending`.
async fn assert_no_bytes_yet(app: &TestApp, token: &str, id: &str) {
    assert_problem(complete(app, token, id, json!({})).await, 409, "conflict").await;
    assert_eq!(file_of(app, Some(token), id).await["status"], "pending");
}
