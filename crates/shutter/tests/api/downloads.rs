//! Downloads (SPEC 4): `GET /v1/files/{id}/content` and the signed `url` of a File, with
//! ranges, strong ETags, conditional requests, the safety headers, and URLs that expire,
//! are tampered with, or stop working when a file turns private.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::upload_helpers::*;

#[tokio::test]
async fn content_is_served_with_ranges_etags_and_safe_headers() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(1000, 11);
    let file = upload(&app, &token, "data.bin", "application/octet-stream", &bytes).await;
    let path = format!("/v1/files/{}/content", id_of(&file));
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    let resp = app.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "etag").as_deref(),
        Some(etag.as_str()),
        "strong ETag of the sha256"
    );
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(header(&resp, "content-length").as_deref(), Some("1000"));
    assert_eq!(
        header(&resp, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let disposition = header(&resp, "content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("filename=\"data.bin\""),
        "{disposition}"
    );
    let cache = header(&resp, "cache-control").unwrap();
    assert!(
        cache.contains("private"),
        "a private file is not publicly cacheable: {cache}"
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    for (range, start, end) in [
        ("bytes=0-99", 0usize, 100usize),
        ("bytes=900-", 900, 1000),
        ("bytes=-10", 990, 1000),
        ("bytes=995-2000", 995, 1000),
        ("bytes=500-500", 500, 501),
    ] {
        let resp = app
            .authed(reqwest::Method::GET, &path, Some(&token))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some(format!("bytes {start}-{}/1000", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            header(&resp, "content-length").as_deref(),
            Some((end - start).to_string().as_str())
        );
        assert_eq!(
            resp.bytes().await.unwrap().to_vec(),
            bytes[start..end].to_vec(),
            "{range}"
        );
    }
    for range in ["bytes=1000-", "bytes=5000-6000"] {
        let resp = app
            .authed(reqwest::Method::GET, &path, Some(&token))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 416, "range_not_satisfiable").await;
    }

    let resp = app
        .authed(reqwest::Method::GET, &path, Some(&token))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&resp, "etag").as_deref(), Some(etag.as_str()));
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = app
        .authed(reqwest::Method::GET, &path, Some(&token))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn private_content_needs_the_owner_or_a_signed_url() {
    let app = spawn_local_storage_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let bytes = pseudo_random(3000, 12);
    let file = upload(
        &app,
        &alice,
        "secret.bin",
        "application/octet-stream",
        &bytes,
    )
    .await;
    let id = id_of(&file);
    let path = format!("/v1/files/{id}/content");

    for token in [Some(bob.as_str()), None] {
        let resp = app.get(&path, token).await;
        assert_problem(resp, 404, "not_found").await;
    }
    let url = file["url"].as_str().unwrap();
    assert!(url.contains("expires=") && url.contains("sig="), "{url}");
    let resp = app.client.get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the signed URL needs no token"
    );
    assert!(header(&resp, "cache-control").unwrap().contains("private"));
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
    let resp = app
        .client
        .get(url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());

    let expires: i64 = url
        .split("expires=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .and_then(|e| e.parse().ok())
        .unwrap();
    let ttl = expires - unix_now();
    assert!(
        (890..=910).contains(&ttl),
        "download_url_ttl defaults to 15 min: {ttl}"
    );
    let other = upload(
        &app,
        &alice,
        "other.bin",
        "application/octet-stream",
        &bytes,
    )
    .await;
    for bad in [
        tamper_sig(url),
        url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 60),
        ),
        url.replace(&id, &id_of(&other)),
        url.replace(&format!("expires={expires}&"), ""),
    ] {
        let resp = app.client.get(&bad).send().await.unwrap();
        assert_problem(resp, 403, "invalid_signature").await;
    }
}

#[tokio::test]
async fn private_download_urls_expire() {
    let app = spawn_local_storage_app_with(|c| {
        c.storage.download_url_ttl = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let (_, token) = user(&app, "alice").await;
    let bytes = b"short-lived".to_vec();
    let file = upload(&app, &token, "s.txt", "text/plain", &bytes).await;
    let url = file["url"].as_str().unwrap().to_owned();
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let resp = app.client.get(&url).send().await.unwrap();
    assert_problem(resp, 410, "url_expired").await;
    // A tampered expired URL is still a bad signature, not merely expired.
    let resp = app.client.get(tamper_sig(&url)).send().await.unwrap();
    assert_problem(resp, 403, "invalid_signature").await;
    // The file hands out a fresh URL.
    let fresh = file_of(&app, Some(&token), &id_of(&file)).await;
    let fresh_url = fresh["url"].as_str().unwrap();
    assert_ne!(fresh_url, url);
    let resp = app.client.get(fresh_url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn public_files_have_stable_urls_that_stop_when_made_private() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let mut body = file_request("bird.jpg", "image/jpeg", photo.len());
    body["visibility"] = json!("public");
    let file = upload_with(&app, &alice, body, &photo).await;
    let id = id_of(&file);
    let url = file["url"].as_str().unwrap().to_owned();
    assert!(
        url.contains("sig=") && !url.contains("expires="),
        "stable: {url}"
    );
    let again = file_of(&app, None, &id).await;
    assert_eq!(again["url"], url.as_str(), "the same URL every time");

    for token in [None, Some(bob.as_str()), Some(alice.as_str())] {
        let resp = app.get(&format!("/v1/files/{id}/content"), token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            header(&resp, "content-disposition")
                .unwrap()
                .split(';')
                .next(),
            Some("inline"),
            "images are shown inline"
        );
        assert_eq!(
            header(&resp, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        let cache = header(&resp, "cache-control").unwrap();
        assert!(cache.contains("public"), "{cache}");
        assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
    }
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
    let resp = app.client.get(tamper_sig(&url)).send().await.unwrap();
    assert_problem(resp, 403, "invalid_signature").await;

    // Made private: the public URL and anonymous access stop; the owner still reads it.
    let resp = app
        .patch_json(
            &format!("/v1/files/{id}"),
            Some(&alice),
            &json!({"visibility": "private"}),
        )
        .await;
    let private = expect_status(resp, StatusCode::OK).await;
    assert_ne!(private["url"], url.as_str());
    let resp = app.client.get(&url).send().await.unwrap();
    let status = resp.status().as_u16();
    assert!(
        status == 403 || status == 404,
        "the public URL of a private file must not work: {status}"
    );
    let resp = app.get(&format!("/v1/files/{id}/content"), None).await;
    assert_problem(resp, 404, "not_found").await;
    assert_eq!(download(&app, Some(&alice), &id).await, photo);
}

#[tokio::test]
async fn hostile_content_is_only_ever_an_attachment() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let svg = testdata("hostile/script.svg");
    let polyglot = testdata("hostile/polyglot_gif_html.gif");
    let gif = testdata("hostile/animated.gif");
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    for (name, content_type, bytes, inline) in [
        ("script.svg", "image/svg+xml", &svg, false),
        ("polyglot.gif", "text/html", &polyglot, false),
        ("page.html", "text/html", &html, false),
        ("animated.gif", "image/gif", &gif, true),
    ] {
        let file = upload(&app, &token, name, content_type, bytes).await;
        let resp = app
            .get(&format!("/v1/files/{}/content", id_of(&file)), Some(&token))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        assert_eq!(
            header(&resp, "content-type").as_deref(),
            Some(content_type),
            "{name}"
        );
        assert_eq!(
            header(&resp, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{name}"
        );
        let disposition = header(&resp, "content-disposition").unwrap();
        let kind = disposition.split(';').next().unwrap();
        let want = if inline { "inline" } else { "attachment" };
        assert_eq!(kind, want, "{name}: {disposition}");
        assert_eq!(&resp.bytes().await.unwrap().to_vec(), bytes, "{name}");
    }
}
