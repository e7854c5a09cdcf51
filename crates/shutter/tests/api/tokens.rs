//! Access-token verification: what gets in and what stays out (SPEC 2, "Only the configured
//! algorithm is accepted"), and the signing key kept in the data directory.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn assert_rejected(app: &TestApp, token: &str, code: &str) {
    let resp = app.get("/v1/users/me", Some(token)).await;
    assert_problem(resp, 401, code).await;
}

#[tokio::test]
async fn no_token_is_unauthenticated_on_every_protected_endpoint() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("owner").await;
    let post = app.create_post(&access, "mine").await;
    let post_id = id_of(&post);
    let comment = app.create_comment(&access, &post_id, "hi").await;
    let comment_id = id_of(&comment);
    let some_id = uuid::Uuid::now_v7().to_string();

    for resp in [
        app.get("/v1/users/me", None).await,
        app.get("/v1/limits", None).await,
        app.patch_json("/v1/users/me", None, &json!({"bio": "x"}))
            .await,
        app.delete_json("/v1/users/me", None, &json!({"password": PASSWORD}))
            .await,
        app.patch_json(
            &format!("/v1/admin/users/{some_id}"),
            None,
            &json!({"tier": "premium"}),
        )
        .await,
        app.post_json("/v1/posts", None, &json!({"caption": "x"}))
            .await,
        app.patch_json(
            &format!("/v1/posts/{post_id}"),
            None,
            &json!({"caption": "y"}),
        )
        .await,
        app.delete(&format!("/v1/posts/{post_id}"), None).await,
        app.post_json(
            &format!("/v1/posts/{post_id}/comments"),
            None,
            &json!({"text": "x"}),
        )
        .await,
        app.delete(&format!("/v1/comments/{comment_id}"), None)
            .await,
    ] {
        assert_problem(resp, 401, "unauthenticated").await;
    }
    // Nothing was changed by the refused requests.
    let post = app.get_post(&post_id, None).await;
    assert_eq!(post["caption"], "mine");
    assert_eq!(post["comment_count"], 1);
}

#[tokio::test]
async fn garbage_and_wrong_scheme_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("schemer").await;
    assert_rejected(&app, "garbage", "unauthenticated").await;
    assert_rejected(&app, "a.b.c", "unauthenticated").await;
    assert_rejected(&app, "", "unauthenticated").await;
    // A valid token under another scheme is still no bearer token.
    let resp = app
        .request(reqwest::Method::GET, "/v1/users/me")
        .header("Authorization", format!("Basic {access}"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "unauthenticated").await;
    // A token with one character of its signature changed.
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_rejected(&app, &tampered, "unauthenticated").await;
}

#[tokio::test]
async fn a_token_forged_with_the_servers_key_is_accepted() {
    // The control for the attacks below: the forging itself is right.
    let app = spawn_app().await;
    let (user, _, _) = app.register("forged").await;
    let token = app.forge_token(&app.claims_for(user["id"].as_str().unwrap()));
    assert_eq!(app.me(&token).await["id"], user["id"]);
}

#[tokio::test]
async fn alg_none_is_unauthenticated() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("nonealg").await;
    let claims = app.claims_for(user["id"].as_str().unwrap());
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_rejected(&app, &format!("{header}.{payload}."), "unauthenticated").await;
        // Same with a leftover signature from a real token.
        let real = app.forge_token(&claims);
        let sig = real.rsplit('.').next().unwrap();
        assert_rejected(
            &app,
            &format!("{header}.{payload}.{sig}"),
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn hs256_with_a_wrong_key_is_unauthenticated() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("wrongkey").await;
    let claims = app.claims_for(user["id"].as_str().unwrap());
    let token = sign_hs(Algorithm::HS256, &[7u8; 64], &claims);
    assert_rejected(&app, &token, "unauthenticated").await;
}

#[tokio::test]
async fn another_hmac_algorithm_with_the_right_key_is_unauthenticated() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("otheralg").await;
    let claims = app.claims_for(user["id"].as_str().unwrap());
    let key = app.jwt_key();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign_hs(alg, &key, &claims);
        assert_rejected(&app, &token, "unauthenticated").await;
    }
}

#[tokio::test]
async fn an_expired_token_is_token_expired() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("expired").await;
    let mut claims = app.claims_for(user["id"].as_str().unwrap());
    let now = unix_now();
    // Well beyond the 5 s leeway.
    claims["iat"] = json!(now - 1000);
    claims["exp"] = json!(now - 60);
    let token = app.forge_token(&claims);
    assert_rejected(&app, &token, "token_expired").await;
    // Just past the 5 s leeway (a library default of 60 s would let this in).
    claims["exp"] = json!(unix_now() - 10);
    assert_rejected(&app, &app.forge_token(&claims), "token_expired").await;
}

#[tokio::test]
async fn the_access_token_ttl_follows_the_configuration() {
    let app = spawn_app_with(|c| {
        c.auth.access_token_ttl = shutter_core::config::DurationValue::secs(120);
    })
    .await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "shortlived", "password": PASSWORD}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["expires_in"], 120);
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn a_wrong_or_missing_issuer_is_unauthenticated() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("wrongiss").await;
    let mut claims = app.claims_for(user["id"].as_str().unwrap());
    claims["iss"] = json!("http://evil.example");
    assert_rejected(&app, &app.forge_token(&claims), "unauthenticated").await;
    claims.as_object_mut().unwrap().remove("iss");
    assert_rejected(&app, &app.forge_token(&claims), "unauthenticated").await;
}

#[tokio::test]
async fn a_token_without_exp_is_unauthenticated() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("noexp").await;
    let mut claims = app.claims_for(user["id"].as_str().unwrap());
    claims.as_object_mut().unwrap().remove("exp");
    assert_rejected(&app, &app.forge_token(&claims), "unauthenticated").await;
}

#[tokio::test]
async fn a_token_for_a_user_that_does_not_exist_is_unauthenticated() {
    let app = spawn_app().await;
    let _ = app.register("someone").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    assert_rejected(
        &app,
        &app.forge_token(&app.claims_for(&ghost)),
        "unauthenticated",
    )
    .await;
    assert_rejected(
        &app,
        &app.forge_token(&app.claims_for("not-a-uuid")),
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn role_and_tier_claims_are_not_trusted_over_the_account() {
    // A change applies without a new token, so the server must read role and tier from the
    // account; a token that merely claims `admin` gets nothing.
    let app = spawn_app().await;
    let (user, _, _) = app.register("pretender").await;
    let (victim, _, _) = app.register("target").await;
    let mut claims = app.claims_for(user["id"].as_str().unwrap());
    claims["role"] = json!("admin");
    claims["tier"] = json!("premium");
    let token = app.forge_token(&claims);
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{}", victim["id"].as_str().unwrap()),
            Some(&token),
            &json!({"tier": "premium"}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "basic");
}

#[tokio::test]
async fn the_signing_key_is_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let path = app.data_dir.path().join("secrets").join("jwt.key");
    let meta = std::fs::metadata(&path).expect("secrets/jwt.key exists after start");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path:?}");
    assert_eq!(meta.len(), 64);
}

#[tokio::test]
async fn the_signing_key_is_reused_and_tokens_survive_a_restart() {
    let data_dir = crate::backend::data_dir().await;
    // A fixed public URL: the issuer must not change with the port across the restart.
    let configure = |dir: &std::path::Path| {
        let mut config = test_config(dir);
        config.server.public_url = Some("http://shutter.test".into());
        config
    };
    let first = start(
        configure(data_dir.path()),
        tempfile::tempdir().unwrap().into(),
    )
    .await;
    let (user, access, refresh) = first.register("survivor").await;
    assert_eq!(jwt_claims(&access)["iss"], "http://shutter.test");
    let key_before = std::fs::read(data_dir.path().join("secrets/jwt.key")).unwrap();
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let second = start(
        configure(data_dir.path()),
        tempfile::tempdir().unwrap().into(),
    )
    .await;
    let key_after = std::fs::read(data_dir.path().join("secrets/jwt.key")).unwrap();
    assert_eq!(key_before, key_after, "the key is reused, not regenerated");
    let me: Value = second.me(&access).await;
    assert_eq!(me["id"], user["id"]);
    let resp = second
        .post_json("/v1/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    expect_status(resp, StatusCode::OK).await;
}
