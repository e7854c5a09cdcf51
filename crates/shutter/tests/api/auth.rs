//! Registration, login, refresh-token rotation and logout (SPEC 2).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn assert_session_body(body: &Value) {
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 900, "15 min by default: {body}");
    let access = body["access_token"].as_str().expect("access_token");
    assert_eq!(access.split('.').count(), 3, "the access token is a JWT");
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert!(refresh.len() >= 16, "a refresh token worth the name");
    assert_ne!(access, refresh);
}

#[tokio::test]
async fn register_returns_201_with_user_and_tokens() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "alice", "password": PASSWORD, "display_name": "Alice A."}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_session_body(&body);
    let user = &body["user"];
    assert_uuid_v7(&user["id"]);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["bio"], "");
    assert_eq!(user["tier"], "basic");
    assert_timestamp(&user["created_at"]);
    assert_eq!(user["followers_count"], 0);
    assert_eq!(user["following_count"], 0);
    assert_eq!(user["posts_count"], 0);
    let text = body.to_string().to_lowercase();
    assert!(
        !text.contains("argon2"),
        "no password hash in the answer: {body}"
    );
    assert!(
        user.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("password")),
        "{user}"
    );
}

#[tokio::test]
async fn access_token_carries_the_specified_claims() {
    let app = spawn_app().await;
    let (user, access, _) = app.register("claimcheck").await;
    let claims = jwt_claims(&access);
    assert_eq!(claims["sub"], user["id"], "{claims}");
    assert_eq!(claims["tier"], "basic");
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["iss"], app.address, "{claims}");
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - iat, 900, "15 minutes: {claims}");
    assert!((iat - unix_now()).abs() < 60, "iat is now: {claims}");
    let header: Value = {
        use base64::Engine;
        let part = access.split('.').next().unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    assert_eq!(header["alg"], "HS256");
}

#[tokio::test]
async fn the_access_token_from_register_works_and_identifies_the_user() {
    let app = spawn_app().await;
    let (user, access, _) = app.register("bearer").await;
    let me = app.me(&access).await;
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["username"], "bearer");
}

#[tokio::test]
async fn username_is_lowercased_and_unique_case_insensitively() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "MixedCase_1", "password": PASSWORD}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["user"]["username"], "mixedcase_1");

    for taken in ["mixedcase_1", "MIXEDCASE_1", "mixedCase_1"] {
        let resp = app
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": taken, "password": PASSWORD}),
            )
            .await;
        assert_problem(resp, 409, "username_taken").await;
    }
}

#[tokio::test]
async fn usernames_breaking_the_rules_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let too_long = "a".repeat(31);
    for bad in [
        "ab",
        "",
        too_long.as_str(),
        "has-dash",
        "has space",
        "dot.ted",
        "émile",
        "name!",
    ] {
        let resp = app
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": bad, "password": PASSWORD}),
            )
            .await;
        assert_invalid_field(resp, "username").await;
    }
}

#[tokio::test]
async fn usernames_at_the_length_bounds_are_accepted() {
    let app = spawn_app().await;
    let longest = "b".repeat(30);
    for good in ["abc", longest.as_str(), "a_1"] {
        let resp = app
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": good, "password": PASSWORD}),
            )
            .await;
        expect_status(resp, StatusCode::CREATED).await;
    }
}

#[tokio::test]
async fn password_must_be_8_to_128_characters() {
    let app = spawn_app().await;
    let long_ok = "p".repeat(128);
    let too_long = "p".repeat(129);
    for (i, (password, ok)) in [
        ("1234567", false),
        ("", false),
        (too_long.as_str(), false),
        ("12345678", true),
        (long_ok.as_str(), true),
        // 8 characters, 16 bytes: the rule counts characters.
        ("éééééééé", true),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = app
            .post_json(
                "/v1/auth/register",
                None,
                &json!({"username": format!("pw_user_{i}"), "password": password}),
            )
            .await;
        if ok {
            expect_status(resp, StatusCode::CREATED).await;
            let login = app.login(&format!("pw_user_{i}"), password).await;
            expect_status(login, StatusCode::OK).await;
        } else {
            assert_invalid_field(resp, "password").await;
        }
    }
}

#[tokio::test]
async fn display_name_over_100_characters_is_refused_at_registration() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "longname", "password": PASSWORD, "display_name": "x".repeat(101)}),
        )
        .await;
    assert_invalid_field(resp, "display_name").await;
}

#[tokio::test]
async fn register_with_missing_or_mistyped_fields_names_them() {
    let app = spawn_app().await;
    let resp = app
        .post_json("/v1/auth/register", None, &json!({"username": "nopass"}))
        .await;
    assert_invalid_field(resp, "password").await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": 12345, "password": PASSWORD}),
        )
        .await;
    assert_invalid_field(resp, "username").await;
}

#[tokio::test]
async fn login_returns_a_fresh_session() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("logme").await;
    let body = expect_status(app.login("logme", PASSWORD).await, StatusCode::OK).await;
    assert_session_body(&body);
    assert_eq!(body["user"]["id"], user["id"]);
    let (_, access, _) = session_parts(body);
    assert_eq!(app.me(&access).await["id"], user["id"]);
}

#[tokio::test]
async fn login_is_case_insensitive_on_the_username() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("casey").await;
    let body = expect_status(app.login("CaSeY", PASSWORD).await, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], user["id"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_invalid_credentials() {
    let app = spawn_app().await;
    app.register("victim").await;
    let wrong = assert_problem(
        app.login("victim", "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody_here", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    // Nothing tells an attacker which of the two was wrong.
    assert_eq!(wrong["detail"], unknown["detail"]);
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let app = spawn_app().await;
    let (user, _, refresh) = app.register("rotator").await;
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_session_body(&body);
    assert_eq!(body["user"]["id"], user["id"]);
    let (_, access2, refresh2) = session_parts(body);
    assert_ne!(refresh2, refresh, "refresh tokens rotate");
    assert_eq!(app.me(&access2).await["id"], user["id"]);

    // The new refresh token works once more.
    let resp = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": refresh2}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, _, first) = app.register("family").await;
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": first}))
        .await;
    let (_, _, second) = session_parts(expect_status(resp, StatusCode::OK).await);

    // The old one again: refused ...
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": first}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
    // ... and the newest of the family is revoked with it.
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": second}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;

    // Another session of the same user (another family) is untouched.
    let other = expect_status(app.login("family", PASSWORD).await, StatusCode::OK).await;
    let (_, _, other_refresh) = session_parts(other);
    let resp = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": other_refresh}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
}

#[tokio::test]
async fn garbage_refresh_token_is_unauthenticated() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": "definitely-not-a-token"}),
        )
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
    let resp = app.post_json("/v1/auth/refresh", None, &json!({})).await;
    assert_invalid_field(resp, "refresh_token").await;
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("confused").await;
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": access}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn logout_ends_the_refresh_token() {
    let app = spawn_app().await;
    let (_, _, refresh) = app.register("leaver").await;
    let resp = app
        .post_json("/v1/auth/logout", None, &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.text().await.unwrap().is_empty(), "204 has no body");
    let resp = app
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn logout_leaves_other_sessions_alone() {
    let app = spawn_app().await;
    let (_, _, refresh_a) = app.register("twosessions").await;
    let (_, _, refresh_b) = session_parts(
        expect_status(app.login("twosessions", PASSWORD).await, StatusCode::OK).await,
    );
    let resp = app
        .post_json(
            "/v1/auth/logout",
            None,
            &json!({"refresh_token": refresh_a}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": refresh_b}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
}
