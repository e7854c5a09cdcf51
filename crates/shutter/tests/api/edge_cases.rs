//! Edge cases at the API's boundary: hostile `Range` headers, signed URLs that must not leak
//! whether a file exists, query strings and methods that do not fit, strict JSON bodies, and
//! who may unfollow or delete what.

use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::social_helpers::{create_pending_post, PHOTO};
use crate::upload_helpers::*;

/// A GET of `path` with `Range: range` as `token`.
async fn get_range(app: &TestApp, path: &str, token: &str, range: &str) -> reqwest::Response {
    app.authed(Method::GET, path, Some(token))
        .header("range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ranges_never_overflow_and_unsatisfiable_ones_name_the_size() {
    let app = spawn_local_storage_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(1000, 21);
    let file = upload(&app, &token, "data.bin", "application/octet-stream", &bytes).await;
    let path = format!("/v1/files/{}/content", id_of(&file));

    // An end past the object (even the largest number there is) is clamped to its last byte;
    // a suffix longer than the object is the whole object.
    for range in [
        "bytes=0-18446744073709551615",
        "bytes=0-99999999999999999999999999",
        "bytes=-18446744073709551615",
        "bytes=-5000",
    ] {
        let resp = get_range(&app, &path, &token, range).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes 0-999/1000"),
            "{range}"
        );
        assert_eq!(header(&resp, "content-length").as_deref(), Some("1000"));
        assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes, "{range}");
    }

    // Of several ranges, the one that overlaps the object is served alone.
    let resp = get_range(&app, &path, &token, "bytes=10-19, 5000-6000").await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&resp, "content-range").as_deref(),
        Some("bytes 10-19/1000")
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    // Several satisfiable ranges: the whole representation, which RFC 9110 allows.
    let resp = get_range(&app, &path, &token, "bytes=0-1,10-11").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // Nothing overlaps: 416 with `Content-Range: bytes */<size>`.
    for range in [
        "bytes=18446744073709551615-",
        "bytes=18446744073709551615-18446744073709551615",
        "bytes=1000-",
        "bytes=-0",
        "bytes=2000-3000,4000-",
    ] {
        let resp = get_range(&app, &path, &token, range).await;
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes */1000"),
            "{range}"
        );
        assert_problem(resp, 416, "range_not_satisfiable").await;
    }
}

#[tokio::test]
async fn bad_signatures_get_the_same_answer_whether_the_file_exists_or_not() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let file = upload(&app, &alice, "secret.bin", "text/plain", b"secret bytes").await;
    let id = id_of(&file);
    let ghost = uuid::Uuid::now_v7().to_string();
    let url = tamper_sig(file["url"].as_str().unwrap());
    let expires = unix_now() + 600;

    // Downloads: a tampered private URL, the same signature on an id that does not exist,
    // and a public-style URL (no expiry) on either.
    for target in [&id, &ghost] {
        for query in [
            url.split_once('?').unwrap().1.to_owned(),
            "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            format!("expires={expires}&sig=bogus"),
            // Expired and badly signed: still the signature's answer.
            "expires=1&sig=bogus".to_owned(),
        ] {
            let resp = app
                .client
                .get(app.url(&format!("/v1/files/{target}/content?{query}")))
                .send()
                .await
                .unwrap();
            assert_problem(resp, 403, "invalid_signature").await;
        }
    }

    // Uploads: a badly signed PUT to a pending file and to a file that does not exist.
    let (pending, _) = create_file(&app, &alice, &file_request("a.txt", "text/plain", 4)).await;
    for target in [id_of(&pending), ghost.clone()] {
        let resp = app
            .client
            .put(app.url(&format!(
                "/v1/files/{target}/content?expires={expires}&sig=bogus"
            )))
            .header("content-type", "text/plain")
            .body("abcd")
            .send()
            .await
            .unwrap();
        assert_problem(resp, 403, "invalid_signature").await;
    }
}

#[tokio::test]
async fn query_strings_that_do_not_fit_are_problems_naming_the_parameter() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let file = upload(&app, &token, "a.txt", "text/plain", b"hello").await;
    let id = id_of(&file);
    for (path, field) in [
        (format!("/v1/files/{id}/content?sig=a&sig=b"), "sig"),
        (
            format!("/v1/files/{id}/content?variant=thumb&variant=w640"),
            "variant",
        ),
        ("/v1/files?tag=a&tag=b".to_owned(), "tag"),
        ("/v1/files?limit=1&limit=2".to_owned(), "limit"),
        ("/v1/explore?limit=1&limit=2".to_owned(), "limit"),
        (
            "/v1/events?access_token=a&access_token=b".to_owned(),
            "access_token",
        ),
    ] {
        let resp = app.get(&path, Some(&token)).await;
        assert_invalid_field(resp, field).await;
    }
    let resp = app
        .client
        .put(app.url(&format!("/v1/files/{id}/content?expires=1&expires=2&sig=x")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_invalid_field(resp, "expires").await;
}

#[tokio::test]
async fn a_method_the_path_does_not_serve_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    for (method, path, allowed) in [
        (Method::PATCH, "/v1/feed", "GET"),
        (Method::DELETE, "/v1/auth/login", "POST"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let resp = app.authed(method, path, Some(&token)).send().await.unwrap();
        let allow = header(&resp, "allow").unwrap_or_default();
        assert!(allow.contains(allowed), "{path}: Allow is {allow:?}");
        assert_problem(resp, 405, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn completing_an_upload_checks_the_shape_of_its_parts() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let file = upload(&app, &token, "a.txt", "text/plain", b"hello").await;
    let path = format!("/v1/files/{}/complete", id_of(&file));
    for (body, field) in [
        (serde_json::json!({"parts": [1]}), "parts[0]"),
        (serde_json::json!({"parts": ["x"]}), "parts[0]"),
        (
            serde_json::json!({"parts": [{"number": 1}]}),
            "parts[0].etag",
        ),
        (
            serde_json::json!({"parts": [{"etag": "\"e\""}]}),
            "parts[0].number",
        ),
        (
            serde_json::json!({"parts": [{"number": "1", "etag": "\"e\""}]}),
            "parts[0].number",
        ),
        (
            serde_json::json!({"parts": [{"number": 0, "etag": "\"e\""}]}),
            "parts[0].number",
        ),
        (
            serde_json::json!({"parts": [{"number": 1, "etag": "\"e\""}, {"number": 2, "etag": ""}]}),
            "parts[1].etag",
        ),
        (serde_json::json!({"parts": {"number": 1}}), "parts"),
    ] {
        let resp = app.post_json(&path, Some(&token), &body).await;
        assert_invalid_field(resp, field).await;
    }
    // The documented shape, and no body at all, are accepted.
    let body = serde_json::json!({"parts": [{"number": 1, "etag": "\"e\""}]});
    let resp = app.post_json(&path, Some(&token), &body).await;
    assert_eq!(
        expect_status(resp, StatusCode::OK).await["file"]["id"],
        file["id"]
    );
    let resp = app
        .authed(Method::POST, &path, Some(&token))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::OK).await;
}

#[tokio::test]
async fn unfollowing_yourself_is_an_idempotent_no_op() {
    let app = spawn_app().await;
    let (me, token) = user(&app, "narcissus").await;
    for _ in 0..2 {
        let resp = app
            .delete(&format!("/v1/users/{me}/follow"), Some(&token))
            .await;
        expect_status(resp, StatusCode::NO_CONTENT).await;
    }
    let profile = app.me(&token).await;
    assert_eq!(profile["followers_count"], 0, "{profile}");
    assert_eq!(profile["following_count"], 0, "{profile}");
    // Following yourself stays refused.
    let resp = app
        .authed(Method::PUT, &format!("/v1/users/{me}/follow"), Some(&token))
        .send()
        .await
        .unwrap();
    assert_invalid_field(resp, "id").await;
}

#[tokio::test]
async fn an_admin_deletes_pending_and_failed_posts_of_others() {
    let app = spawn_app().await;
    let (_, author) = user(&app, "author").await;
    let (_, admin) = user(&app, "moderator").await;
    let (_, other) = user(&app, "bystander").await;
    app.make_admin("moderator").await;

    let (pending, _) = create_pending_post(&app, &author, "not yet").await;
    let (failing, ticket) = create_pending_post(&app, &author, "never").await;
    let size = testdata(PHOTO).len();
    let resp = put_ticket(&app, &ticket, vec![b'x'; size]).await;
    assert_problem(resp, 422, "content_mismatch").await;
    let failed = wait_post_status(&app, &author, &id_of(&failing), "failed").await;
    assert_eq!(failed["status"], "failed");

    for post in [&pending, &failing] {
        let path = format!("/v1/posts/{}", id_of(post));
        // Someone who is neither the author nor an admin cannot even see it.
        assert_problem(app.delete(&path, Some(&other)).await, 404, "not_found").await;
        expect_status(
            app.delete(&path, Some(&admin)).await,
            StatusCode::NO_CONTENT,
        )
        .await;
        assert_problem(app.get(&path, Some(&author)).await, 404, "not_found").await;
        assert_problem(app.delete(&path, Some(&admin)).await, 404, "not_found").await;
    }
}

/// Polls a post (as its author) until it has `status`, for at most a minute.
async fn wait_post_status(app: &TestApp, token: &str, id: &str, status: &str) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let post = app.get_post(id, Some(token)).await;
        if post["status"] == status || start.elapsed() > std::time::Duration::from_secs(60) {
            return post;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `GET /v1/explore` as if forwarded for `client` (`X-Forwarded-For`); returns the status.
async fn explore_for(app: &TestApp, client: &str) -> StatusCode {
    app.request(Method::GET, "/v1/explore")
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_and_ipv6_by_its_64() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.per_ip_per_minute = 3;
        c.server.trusted_proxies = vec!["127.0.0.0/8".into(), "192.0.2.0/24".into()];
    })
    .await;
    // Three addresses of one IPv6 /64 share one budget.
    for client in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
        assert_eq!(explore_for(&app, client).await, StatusCode::OK, "{client}");
    }
    assert_eq!(
        explore_for(&app, "2001:db8:1:2:abcd::1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /64, and an IPv4 client, have budgets of their own; the right-most address
    // that is not a trusted proxy is the client, whatever the client put before it.
    assert_eq!(explore_for(&app, "2001:db8:1:3::1").await, StatusCode::OK);
    for chain in [
        "198.51.100.7",
        "2001:db8:1:2::1, 198.51.100.7",
        "2001:db8:1:2::1, 198.51.100.7, 192.0.2.10",
    ] {
        assert_eq!(explore_for(&app, chain).await, StatusCode::OK, "{chain}");
    }
    assert_eq!(
        explore_for(&app, "198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_ignored() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.per_ip_per_minute = 3;
    })
    .await;
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        assert_eq!(explore_for(&app, client).await, StatusCode::OK);
    }
    // A new forwarded address does not buy a new budget: the peer is the client.
    assert_eq!(
        explore_for(&app, "198.51.100.4").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
