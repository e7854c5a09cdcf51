//! Conventions of every endpoint (SPEC 1): request ids, problem+json, body parsing and size,
//! content types, path ids.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

#[tokio::test]
async fn every_response_carries_a_generated_request_id() {
    let app = spawn_app().await;
    let mut seen = std::collections::HashSet::new();
    for path in [
        "/healthz",
        "/v1/users/by-username/nobody",
        "/v1/users/me",
        "/openapi.json",
    ] {
        let resp = app.get(path, None).await;
        let id = header(&resp, "x-request-id").unwrap_or_else(|| panic!("{path}: X-Request-Id"));
        assert!(is_sane_request_id(&id), "{path}: {id:?}");
        assert!(seen.insert(id), "request ids are unique");
    }
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_in_the_header_and_the_problem() {
    let app = spawn_app().await;
    let longest = "a".repeat(128);
    for sent in ["req-123_abc.DEF", "x", longest.as_str()] {
        let resp = app
            .request(Method::GET, "/v1/users/me")
            .header("X-Request-Id", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&resp, "x-request-id").as_deref(), Some(sent));
        let body = assert_problem(resp, 401, "unauthenticated").await;
        assert_eq!(body["request_id"], sent);
    }
    let resp = app
        .request(Method::GET, "/healthz")
        .header("X-Request-Id", "health-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-request-id").as_deref(), Some("health-1"));
}

#[tokio::test]
async fn an_insane_request_id_is_replaced() {
    let app = spawn_app().await;
    let too_long = "a".repeat(129);
    let very_long = "b".repeat(200);
    for sent in [
        too_long.as_str(),
        very_long.as_str(),
        "has spaces in it",
        "slash/y",
        "semi;colon",
        "quote\"d",
    ] {
        let resp = app
            .request(Method::GET, "/v1/users/me")
            .header("X-Request-Id", sent)
            .send()
            .await
            .unwrap();
        let got = header(&resp, "x-request-id").expect("X-Request-Id");
        assert_ne!(got, sent);
        assert!(is_sane_request_id(&got), "{got:?}");
        let body = assert_problem(resp, 401, "unauthenticated").await;
        assert_eq!(body["request_id"], got.as_str());
    }
}

#[tokio::test]
async fn problem_bodies_have_exactly_the_specified_members() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("shape").await;
    let allowed = [
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "errors",
        "limit",
        "instance",
    ];
    let cases = vec![
        (app.get("/v1/users/me", None).await, 401, "unauthenticated"),
        (
            app.post_json("/v1/posts", Some(&token), &json!({"caption": ""}))
                .await,
            400,
            "validation_failed",
        ),
        (
            app.get(&format!("/v1/posts/{}", uuid::Uuid::now_v7()), None)
                .await,
            404,
            "not_found",
        ),
    ];
    for (resp, status, code) in cases {
        let body = assert_problem(resp, status, code).await;
        for key in body.as_object().unwrap().keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "unexpected member {key}: {body}"
            );
        }
        assert!(!body["title"].as_str().unwrap().is_empty());
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_malformed_request() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("malformed").await;
    let post = app.create_post(&token, "p").await;
    let targets = [
        (Method::POST, "/v1/auth/register".to_owned()),
        (Method::POST, "/v1/auth/login".to_owned()),
        (Method::POST, "/v1/auth/refresh".to_owned()),
        (Method::POST, "/v1/posts".to_owned()),
        (Method::PATCH, "/v1/users/me".to_owned()),
        (Method::PATCH, format!("/v1/posts/{}", id_of(&post))),
        (Method::POST, format!("/v1/posts/{}/comments", id_of(&post))),
    ];
    for (method, path) in targets {
        for body in [
            "{\"caption\": ",
            "not json at all",
            "{'single': 'quotes'}",
            "",
        ] {
            let resp = app
                .authed(method.clone(), &path, Some(&token))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_problem(resp, 400, "malformed_request").await;
        }
    }
    // Nothing was created or changed.
    let me = app.me(&token).await;
    assert_eq!(me["posts_count"], 1);
    assert_eq!(me["display_name"], user["display_name"]);
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_validation_failed_naming_the_field() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("shapely").await;
    let resp = app
        .post_json("/v1/posts", Some(&token), &json!({"caption": ["a", "b"]}))
        .await;
    assert_invalid_field(resp, "caption").await;
    let resp = app
        .post_json("/v1/auth/login", None, &json!({"username": "shapely"}))
        .await;
    assert_invalid_field(resp, "password").await;
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&token),
            &json!({"bio": {"nested": true}}),
        )
        .await;
    assert_invalid_field(resp, "bio").await;
}

#[tokio::test]
async fn a_json_body_over_64_kib_is_payload_too_large() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("bigmouth").await;
    let big = json!({"caption": "x".repeat(70 * 1024)});
    let resp = app.post_json("/v1/posts", Some(&token), &big).await;
    assert_problem(resp, 413, "payload_too_large").await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "huge", "password": PASSWORD, "display_name": "d".repeat(100 * 1024)}),
        )
        .await;
    assert_problem(resp, 413, "payload_too_large").await;
    // Under the size limit the usual field rules answer instead.
    let resp = app
        .post_json(
            "/v1/posts",
            Some(&token),
            &json!({"caption": "x".repeat(60 * 1024)}),
        )
        .await;
    assert_invalid_field(resp, "caption").await;
    assert_eq!(app.me(&token).await["posts_count"], 0);
}

#[tokio::test]
async fn a_content_type_other_than_json_is_unsupported_media_type() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("typist").await;
    let body = json!({"caption": "valid JSON, wrong label"}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let resp = app
            .authed(Method::POST, "/v1/posts", Some(&token))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_problem(resp, 415, "unsupported_media_type").await;
    }
    let resp = app
        .request(Method::POST, "/v1/auth/register")
        .header("Content-Type", "text/plain")
        .body(json!({"username": "typed", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415, "unsupported_media_type").await;
    assert_eq!(app.me(&token).await["posts_count"], 0);

    // A charset parameter is still JSON.
    let resp = app
        .authed(Method::POST, "/v1/posts", Some(&token))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::CREATED).await;
}

#[tokio::test]
async fn ids_and_timestamps_have_the_specified_format() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("formats").await;
    let post = app.create_post(&token, "p").await;
    let comment = app.create_comment(&token, &id_of(&post), "c").await;
    for value in [&user["id"], &post["id"], &comment["id"]] {
        assert_uuid_v7(value);
    }
    for value in [
        &user["created_at"],
        &post["created_at"],
        &post["updated_at"],
        &comment["created_at"],
    ] {
        assert_timestamp(value);
    }
    // Time-sortable: later things have larger ids.
    assert!(post["id"].as_str().unwrap() > user["id"].as_str().unwrap());
    assert!(comment["id"].as_str().unwrap() > post["id"].as_str().unwrap());
}

#[tokio::test]
async fn an_unknown_route_is_a_not_found_problem() {
    let app = spawn_app().await;
    let resp = app.get("/v1/no-such-thing", None).await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn responses_are_json() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("jsonic").await;
    let resp = app.get(&format!("/v1/users/{}", id_of(&user)), None).await;
    let content_type = header(&resp, "content-type").unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "jsonic");
}

#[tokio::test]
async fn a_json_body_that_is_not_an_object_is_validation_failed() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("arrayed").await;
    // serde fills a struct from an array field by field: `["x", "y"]` would set display_name
    // and bio if arrays were taken.
    for body in ["[\"x\", \"y\"]", "[null, null]", "\"text\"", "42", "null"] {
        for (method, path) in [(Method::PATCH, "/v1/users/me"), (Method::POST, "/v1/posts")] {
            let resp = app
                .authed(method, path, Some(&token))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_invalid_field(resp, "body").await;
        }
    }
    let me = app.me(&token).await;
    assert_eq!(me["display_name"], user["display_name"]);
    assert_eq!(me["bio"], user["bio"]);
    assert_eq!(me["posts_count"], 0);
}

#[tokio::test]
async fn an_optional_body_may_be_json_null() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("nulled").await;
    // `DELETE /v1/users/me` takes an optional body: `null` is no body, so the password is
    // missing (401), not a body of the wrong shape (400).
    let resp = app
        .authed(Method::DELETE, "/v1/users/me", Some(&token))
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "invalid_credentials").await;
    // `POST /v1/files/{id}/complete` too: `null` is no parts (asked of an uploaded file, so
    // that it answers 200 on S3 storage as on the built-in store).
    let file = crate::upload_helpers::upload(&app, &token, "n.txt", "text/plain", b"hello").await;
    let resp = app
        .authed(
            Method::POST,
            &format!("/v1/files/{}/complete", id_of(&file)),
            Some(&token),
        )
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
