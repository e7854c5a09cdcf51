//! `POST/GET/PATCH/DELETE /v1/files` and `GET /v1/limits` (SPEC 4): creation with its tier
//! checks and validation, idempotency, listing with filters and pages, who may see, change
//! and delete a file.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::upload_helpers::*;

#[tokio::test]
async fn creating_a_file_returns_it_pending_with_a_presigned_ticket() {
    let app = spawn_local_storage_app().await;
    let (alice_id, token) = user(&app, "alice").await;
    let bytes = b"hello, files".to_vec();
    let sha = sha256_hex(&bytes);
    let md5 = md5_hex(&bytes);
    let resp = app
        .post_json(
            "/v1/files",
            Some(&token),
            &json!({
                "filename": "hello world.txt",
                "size": bytes.len(),
                "content_type": "Text/Plain; charset=utf-8",
                "sha256": sha.to_uppercase(),
                "md5": md5,
                "tags": ["Notes", "2024_trip", "notes"],
            }),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    let file = &body["file"];
    assert_uuid_v7(&file["id"]);
    let id = id_of(file);
    assert_eq!(file["owner_id"], alice_id.as_str());
    assert_eq!(file["filename"], "hello world.txt");
    assert_eq!(
        file["content_type"], "text/plain",
        "type essence, lowercased"
    );
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha, "hex, lowercased");
    assert_eq!(file["md5"], md5);
    assert_eq!(file["visibility"], "private", "private by default");
    assert_eq!(
        file["tags"],
        json!(["notes", "2024_trip"]),
        "lowercased, once each"
    );
    assert_eq!(file["status"], "pending");
    assert_eq!(file["bytes_received"], 0);
    assert!(file["failure"].is_null(), "{file}");
    assert!(file["url"].is_null(), "no URL before the bytes: {file}");
    assert_timestamp(&file["created_at"]);
    assert_timestamp(&file["updated_at"]);

    let ticket = &body["upload"];
    assert_eq!(ticket["file_id"], id.as_str());
    assert_eq!(ticket["method"], "PUT");
    let url = ticket["url"].as_str().expect("url");
    let prefix = format!("{}/v1/files/{id}/content?", app.address);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains("expires=") && url.contains("sig="), "{url}");
    assert_eq!(ticket["headers"]["Content-Type"], "text/plain", "{ticket}");
    assert_timestamp(&ticket["expires_at"]);
    assert_eq!(
        ticket["tus_url"],
        format!("{}/v1/tus/{id}", app.address),
        "{ticket}"
    );
    // The default upload window is an hour.
    let expires: i64 = url
        .split("expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .and_then(|e| e.parse().ok())
        .expect("expires is a number");
    let ttl = expires - unix_now();
    assert!(
        (3590..=3610).contains(&ttl),
        "upload_url_ttl defaults to 1 h: {ttl}"
    );

    // The URL needs no Authorization: the bytes go up without one.
    let resp = put_ticket(&app, ticket, bytes.clone()).await;
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["status"], "ready", "{done}");
    assert_eq!(download(&app, Some(&token), &id).await, bytes);

    // Creating needs a signed-in user.
    let resp = app
        .post_json("/v1/files", None, &file_request("a.txt", "text/plain", 1))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn creating_a_file_validates_every_field() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let base =
        || json!({"filename": "a.bin", "size": 10, "content_type": "application/octet-stream"});
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("filename", json!("")), "filename"),
        (with("filename", json!("x".repeat(256))), "filename"),
        (with("filename", json!("a\u{7}b.txt")), "filename"),
        (with("filename", json!("line\nbreak.txt")), "filename"),
        (with("content_type", json!("jpeg")), "content_type"),
        (with("content_type", json!("image/")), "content_type"),
        (with("content_type", json!("image jpeg/x")), "content_type"),
        (with("sha256", json!("abc")), "sha256"),
        (with("sha256", json!("g".repeat(64))), "sha256"),
        (with("sha256", json!("a".repeat(66))), "sha256"),
        (with("md5", json!("z".repeat(32))), "md5"),
        (with("md5", json!("a".repeat(64))), "md5"),
        (with("visibility", json!("secret")), "visibility"),
        (with("size", json!(-1)), "size"),
        (with("size", json!("10")), "size"),
        (with("size", json!(10.5)), "size"),
        (with("size", json!(-1.0)), "size"),
    ];
    for (body, field) in cases {
        let resp = app.post_json("/v1/files", Some(&token), &body).await;
        assert_invalid_field(resp, field).await;
    }
    // Tags: at most 20, each 1..50 of [a-z0-9_-].
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let resp = app
        .post_json("/v1/files", Some(&token), &with("tags", json!(many)))
        .await;
    assert_invalid_field(resp, "tags").await;
    for bad in ["", "has space", "émoji", "dot.ted", &"a".repeat(51)] {
        let resp = app
            .post_json("/v1/files", Some(&token), &with("tags", json!(["ok", bad])))
            .await;
        let body = assert_problem(resp, 400, "validation_failed").await;
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields.iter().any(|f| f.starts_with("tags")),
            "tag {bad:?} is refused naming tags: {body}"
        );
    }
    // Missing fields are named; a body that is not JSON is malformed.
    let resp = app
        .post_json(
            "/v1/files",
            Some(&token),
            &json!({"size": 1, "content_type": "a/b"}),
        )
        .await;
    assert_invalid_field(resp, "filename").await;
    let resp = app
        .authed(Method::POST, "/v1/files", Some(&token))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "malformed_request").await;

    // Nothing was created by any of that.
    let page = expect_status(app.get("/v1/files", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(page["items"], json!([]), "{page}");

    // The edges that are fine: a size written 10.0 (JSON, and JSON Schema's `integer`, do not
    // tell it from 10), 20 tags of 50, a 255-byte name, any syntactically valid type.
    let resp = app
        .post_json("/v1/files", Some(&token), &with("size", json!(10.0)))
        .await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(created["file"]["size"], 10);
    let twenty: Vec<String> = (0..20).map(|i| format!("{i:0>50}")).collect();
    let mut body = with("tags", json!(twenty));
    body["filename"] = json!("é".repeat(127) + "x");
    body["content_type"] = json!("application/vnd.shutter.test+json");
    let (file, _) = create_file(&app, &token, &body).await;
    assert_eq!(file["tags"].as_array().unwrap().len(), 20);
    assert_eq!(file["filename"].as_str().unwrap().len(), 255);
    assert_eq!(file["content_type"], "application/vnd.shutter.test+json");
}

#[tokio::test]
async fn tier_limits_are_checked_on_creation_with_the_limit_named() {
    let app = spawn_local_storage_app_with(|c| {
        c.tiers.basic.max_file_size = shutter_core::config::ByteSize(1000);
        c.tiers.basic.max_concurrent_uploads = 2;
        c.tiers.basic.storage_quota = shutter_core::config::ByteSize(2500);
    })
    .await;
    let (_, token) = user(&app, "alice").await;

    // Over max_file_size.
    let resp = app
        .post_json(
            "/v1/files",
            Some(&token),
            &file_request("big.bin", "application/octet-stream", 1001),
        )
        .await;
    let body = assert_problem(resp, 413, "file_too_large").await;
    assert_eq!(
        body["limit"],
        json!({"name": "max_file_size", "value": 1000, "actual": 1001}),
        "{body}"
    );

    // Two unfinished uploads are the most.
    let a = pseudo_random(1000, 1);
    let (file_a, ticket_a) = create_file(
        &app,
        &token,
        &file_request("a.bin", "application/octet-stream", 1000),
    )
    .await;
    let (file_b, ticket_b) = create_file(
        &app,
        &token,
        &file_request("b.bin", "application/octet-stream", 1000),
    )
    .await;
    let resp = app
        .post_json(
            "/v1/files",
            Some(&token),
            &file_request("c.bin", "application/octet-stream", 10),
        )
        .await;
    let body = assert_problem(resp, 429, "too_many_uploads").await;
    assert_eq!(body["limit"]["name"], "max_concurrent_uploads", "{body}");
    assert_eq!(body["limit"]["value"], 2, "{body}");
    // Like `quota_exceeded`'s, `actual` counts the refused request: 2 open + this one.
    assert_eq!(
        body["limit"]["actual"], 3,
        "open uploads with this one: {body}"
    );

    // A finished upload is no longer open, but its bytes count, and so does the pending
    // upload's declared size.
    let resp = put_ticket(&app, &ticket_a, a.clone()).await;
    expect_status(resp, StatusCode::OK).await;
    let resp = app
        .post_json(
            "/v1/files",
            Some(&token),
            &file_request("c.bin", "application/octet-stream", 600),
        )
        .await;
    let body = assert_problem(resp, 403, "quota_exceeded").await;
    assert_eq!(
        body["limit"],
        json!({"name": "storage_quota", "value": 2500, "actual": 2600}),
        "actual = ready 1000 + pending 1000 + new 600: {body}"
    );
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "basic", "{limits}");
    assert_eq!(limits["limits"]["max_file_size"], 1000, "{limits}");
    assert_eq!(limits["limits"]["max_concurrent_uploads"], 2, "{limits}");
    assert_eq!(limits["limits"]["storage_quota"], 2500, "{limits}");
    assert_eq!(limits["limits"]["max_pixels"], 100_000_000, "{limits}");
    assert_eq!(limits["usage"]["bytes_stored"], 2000, "{limits}");
    assert_eq!(limits["usage"]["uploads_open"], 1, "{limits}");

    // Exactly up to the quota is fine.
    let (file_c, _) = create_file(
        &app,
        &token,
        &file_request("c.bin", "application/octet-stream", 500),
    )
    .await;
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["usage"]["bytes_stored"], 2500, "{limits}");
    assert_eq!(limits["usage"]["uploads_open"], 2, "{limits}");

    // A failed upload frees its share; a deleted file frees its bytes.
    let resp = put_ticket(&app, &ticket_b, vec![0u8; 10]).await;
    assert_problem(resp, 422, "size_mismatch").await;
    let resp = app
        .delete(&format!("/v1/files/{}", id_of(&file_a)), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        limits["usage"]["bytes_stored"], 500,
        "only c is left: {limits}"
    );
    assert_eq!(limits["usage"]["uploads_open"], 1, "{limits}");
    assert_eq!(
        file_of(&app, Some(&token), &id_of(&file_b)).await["status"],
        "failed"
    );
    assert_eq!(
        file_of(&app, Some(&token), &id_of(&file_c)).await["status"],
        "pending"
    );

    // Limits are per user.
    let (_, bob) = user(&app, "bob").await;
    create_file(
        &app,
        &bob,
        &file_request("b.bin", "application/octet-stream", 1000),
    )
    .await;
    let resp = app.get("/v1/limits", None).await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn idempotency_key_on_file_creation_replays_and_creates_once() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let body = file_request("once.txt", "text/plain", 5);
    let post = |key: &str, body: &Value| {
        app.authed(Method::POST, "/v1/files", Some(&token))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    let first = post("file-1", &body).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = post("file-1", &body).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the first response is replayed");

    let page = expect_status(app.get("/v1/files", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "created once: {page}"
    );

    let other = file_request("other.txt", "text/plain", 5);
    let resp = post("file-1", &other).await.unwrap();
    assert_problem(resp, 422, "idempotency_key_reused").await;
    let resp = post(&"k".repeat(256), &body).await.unwrap();
    assert_problem(resp, 400, "validation_failed").await;

    // Another user's identical key is theirs.
    let (_, bob) = user(&app, "bob").await;
    let resp = app
        .authed(Method::POST, "/v1/files", Some(&bob))
        .header("Idempotency-Key", "file-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let bobs = expect_status(resp, StatusCode::CREATED).await;
    assert_ne!(bobs["file"]["id"], first["file"]["id"]);
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(id_of)
        .collect()
}

/// Every page of `GET /v1/files?{query}` with `limit`.
async fn all_pages(app: &TestApp, token: &str, query: &str, limit: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("/v1/files?limit={limit}");
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = expect_status(app.get(&url, Some(token)).await, StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(ids(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("paging {query} did not end");
}

#[tokio::test]
async fn listing_files_filters_and_pages_newest_first() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let png = testdata("photos/path_gray_1200x750.png");
    let gap = || tokio::time::sleep(Duration::from_millis(15));

    let mut a_body = file_request("a.jpg", "image/jpeg", photo.len());
    a_body["visibility"] = json!("public");
    a_body["tags"] = json!(["holiday"]);
    let a = upload_with(&app, &token, a_body, &photo).await;
    gap().await;
    let mut b_body = file_request("b.png", "image/png", png.len());
    b_body["tags"] = json!(["holiday", "beach"]);
    let b = upload_with(&app, &token, b_body, &png).await;
    gap().await;
    let mut c_body = file_request("c.txt", "text/plain", 10);
    c_body["tags"] = json!(["notes"]);
    let (c, _) = create_file(&app, &token, &c_body).await;
    gap().await;
    let mut d_body = file_request("d.pdf", "application/pdf", 10);
    d_body["visibility"] = json!("public");
    let (d, d_ticket) = create_file(&app, &token, &d_body).await;
    let resp = put_ticket(&app, &d_ticket, vec![1, 2, 3]).await;
    assert_problem(resp, 422, "size_mismatch").await;
    let (a, b, c, d) = (id_of(&a), id_of(&b), id_of(&c), id_of(&d));

    // Someone else's files never show.
    let (_, bob) = user(&app, "bob").await;
    upload(&app, &bob, "bob.jpg", "image/jpeg", &photo).await;

    let all = all_pages(&app, &token, "", 20).await;
    assert_eq!(
        all,
        vec![d.clone(), c.clone(), b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(all_pages(&app, &token, "", 1).await, all, "pages of one");
    assert_eq!(all_pages(&app, &token, "", 3).await, all, "pages of three");

    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("visibility=public", vec![&d, &a]),
        ("visibility=private", vec![&c, &b]),
        ("tag=holiday", vec![&b, &a]),
        ("tag=HOLIDAY", vec![&b, &a]),
        ("tag=beach", vec![&b]),
        ("tag=none", vec![]),
        ("content_type=image/*", vec![&b, &a]),
        ("content_type=image/png", vec![&b]),
        ("content_type=text/plain", vec![&c]),
        ("content_type=text/*", vec![&c]),
        ("status=ready", vec![&b, &a]),
        ("status=pending", vec![&c]),
        ("status=failed", vec![&d]),
        ("visibility=public&status=ready", vec![&a]),
        ("tag=holiday&content_type=image/jpeg", vec![&a]),
    ];
    for (query, want) in cases {
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(all_pages(&app, &token, query, 20).await, want, "{query}");
        assert_eq!(
            all_pages(&app, &token, query, 1).await,
            want,
            "{query}, pages of one"
        );
    }

    // Time bounds are exclusive.
    let created = |id: &String| {
        let id = id.clone();
        let app = &app;
        let token = &token;
        async move {
            file_of(app, Some(token), &id).await["created_at"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (b_at, c_at) = (created(&b).await, created(&c).await);
    assert_eq!(
        all_pages(&app, &token, &format!("created_after={b_at}"), 20).await,
        vec![d.clone(), c.clone()]
    );
    assert_eq!(
        all_pages(&app, &token, &format!("created_before={c_at}"), 20).await,
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        all_pages(
            &app,
            &token,
            &format!("created_after={b_at}&created_before={c_at}"),
            20
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        all_pages(&app, &token, "created_after=2000-01-01T00:00:00Z", 20).await,
        all
    );

    for (query, field) in [
        ("status=lost", "status"),
        ("visibility=secret", "visibility"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2024-13-01T00:00:00Z", "created_before"),
    ] {
        let resp = app.get(&format!("/v1/files?{query}"), Some(&token)).await;
        assert_invalid_field(resp, field).await;
    }
    for limit in ["0", "101", "many"] {
        let resp = app
            .get(&format!("/v1/files?limit={limit}"), Some(&token))
            .await;
        assert_problem(resp, 400, "validation_failed").await;
    }
    let resp = app.get("/v1/files?cursor=not-a-cursor", Some(&token)).await;
    assert_problem(resp, 400, "invalid_cursor").await;
    let resp = app.get("/v1/files", None).await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_file_is_visible_to_others_only_when_public_and_ready() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let bytes = b"some bytes".to_vec();

    let private = upload(&app, &alice, "private.txt", "text/plain", &bytes).await;
    let mut public_body = file_request("public.txt", "text/plain", bytes.len());
    public_body["visibility"] = json!("public");
    let public = upload_with(&app, &alice, public_body.clone(), &bytes).await;
    let (pending_public, _) = create_file(&app, &alice, &public_body).await;

    for (file, others_see) in [(&private, false), (&public, true), (&pending_public, false)] {
        let path = format!("/v1/files/{}", id_of(file));
        let own = expect_status(app.get(&path, Some(&alice)).await, StatusCode::OK).await;
        assert_eq!(own["id"], file["id"]);
        for token in [Some(bob.as_str()), None] {
            let resp = app.get(&path, token).await;
            if others_see {
                let seen = expect_status(resp, StatusCode::OK).await;
                assert_eq!(seen["id"], file["id"]);
                assert_eq!(seen["status"], "ready");
                assert!(seen["url"].is_string(), "{seen}");
            } else {
                assert_problem(resp, 404, "not_found").await;
            }
        }
    }
    let resp = app
        .get(&format!("/v1/files/{}", uuid::Uuid::now_v7()), Some(&alice))
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn only_the_owner_changes_a_file() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let bytes = b"patch me".to_vec();
    let file = upload(&app, &alice, "old.txt", "text/plain", &bytes).await;
    let id = id_of(&file);
    let path = format!("/v1/files/{id}");

    let changed = expect_status(
        app.patch_json(
            &path,
            Some(&alice),
            &json!({"filename": "new name.txt", "tags": ["A", "b"]}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["filename"], "new name.txt", "{changed}");
    assert_eq!(changed["tags"], json!(["a", "b"]), "{changed}");
    assert_eq!(changed["visibility"], "private", "unchanged: {changed}");
    assert_eq!(changed["status"], "ready");
    assert_eq!(changed["sha256"], sha256_hex(&bytes));

    for (body, field) in [
        (json!({"filename": ""}), "filename"),
        (json!({"filename": "a/b"}), "filename"),
        (json!({"tags": ["no spaces"]}), "tags[0]"),
        (json!({"visibility": "everyone"}), "visibility"),
    ] {
        let resp = app.patch_json(&path, Some(&alice), &body).await;
        assert_invalid_field(resp, field).await;
    }

    // Private: others are told it does not exist.
    let resp = app
        .patch_json(&path, Some(&bob), &json!({"filename": "x"}))
        .await;
    assert_problem(resp, 404, "not_found").await;
    let resp = app.delete(&path, Some(&bob)).await;
    assert_problem(resp, 404, "not_found").await;
    let resp = app.patch_json(&path, None, &json!({"filename": "x"})).await;
    assert_problem(resp, 401, "unauthenticated").await;

    // Public: others may see it, so they are forbidden.
    let public = expect_status(
        app.patch_json(&path, Some(&alice), &json!({"visibility": "public"}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(public["visibility"], "public");
    let resp = app
        .patch_json(&path, Some(&bob), &json!({"filename": "x"}))
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = app.delete(&path, Some(&bob)).await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = app.delete(&path, None).await;
    assert_problem(resp, 401, "unauthenticated").await;

    let after = file_of(&app, Some(&alice), &id).await;
    assert_eq!(
        after["filename"], "new name.txt",
        "bob changed nothing: {after}"
    );
}

#[tokio::test]
async fn deleting_a_file_removes_it_and_its_urls() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let bytes = pseudo_random(4096, 7);

    let private = upload(&app, &alice, "p.bin", "application/octet-stream", &bytes).await;
    let mut public_body = file_request("q.bin", "application/octet-stream", bytes.len());
    public_body["visibility"] = json!("public");
    let public = upload_with(&app, &alice, public_body, &bytes).await;
    let (pending, ticket) = create_file(
        &app,
        &alice,
        &file_request("r.bin", "application/octet-stream", bytes.len()),
    )
    .await;

    for file in [&private, &public] {
        let id = id_of(file);
        let signed = file["url"]
            .as_str()
            .expect("a ready file has a url")
            .to_owned();
        let resp = app.client.get(&signed).send().await.unwrap();
        let resp = follow_to_bucket(&app.client, resp).await;
        assert_eq!(resp.status(), StatusCode::OK, "the URL works before");

        let resp = app.delete(&format!("/v1/files/{id}"), Some(&alice)).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(resp.text().await.unwrap(), "");

        let resp = app.get(&format!("/v1/files/{id}"), Some(&alice)).await;
        assert_problem(resp, 404, "not_found").await;
        let resp = app
            .get(&format!("/v1/files/{id}/content"), Some(&alice))
            .await;
        assert_problem(resp, 404, "not_found").await;
        let resp = app.get(&format!("/v1/files/{id}/content"), None).await;
        assert_problem(resp, 404, "not_found").await;
        let resp = app.client.get(&signed).send().await.unwrap();
        assert_problem(resp, 404, "not_found").await;
        let resp = app.delete(&format!("/v1/files/{id}"), Some(&alice)).await;
        assert_problem(resp, 404, "not_found").await;
    }

    // A pending file goes too, and its upload URL no longer takes bytes. The URL's signature
    // covers the file's declared size and type, which are gone with it: it is answered like
    // any URL that cannot be valid, never with whether the file exists.
    let id = id_of(&pending);
    let resp = app.delete(&format!("/v1/files/{id}"), Some(&alice)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = put_ticket(&app, &ticket, bytes.clone()).await;
    if is_direct_ticket(&app.address, &ticket) {
        // On S3 the bucket takes the bytes where nothing reads them; `complete` finds no file.
        assert_problem(resp, 404, "not_found").await;
    } else {
        assert_problem(resp, 403, "invalid_signature").await;
    }

    let page = expect_status(app.get("/v1/files", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(page["items"], json!([]), "{page}");
    let limits = expect_status(app.get("/v1/limits", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(limits["usage"]["bytes_stored"], 0, "{limits}");
    assert_eq!(limits["usage"]["uploads_open"], 0, "{limits}");
}

#[tokio::test]
async fn a_tag_filter_that_breaks_the_tag_rule_is_validation_failed() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "tagger").await;
    let body = json!({"filename": "a.bin", "size": 10, "content_type": "application/octet-stream", "tags": ["holiday"]});
    let resp = app.post_json("/v1/files", Some(&token), &body).await;
    expect_status(resp, StatusCode::CREATED).await;
    for bad in ["0.5", "has%20space", "%C3%A9moji", &"a".repeat(51), ""] {
        let resp = app.get(&format!("/v1/files?tag={bad}"), Some(&token)).await;
        assert_invalid_field(resp, "tag").await;
    }
    // Tags are lowercased on the way in, filters too.
    let resp = app.get("/v1/files?tag=HOLIDAY", Some(&token)).await;
    let page = expect_status(resp, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}
