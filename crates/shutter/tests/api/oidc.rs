//! An external identity provider (SPEC 2, OIDC): RS256 tokens verified against a JWKS that a
//! tiny HTTP server in the test serves, users created on first sight, tier from a claim.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shutter_core::config::OidcConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const ISSUER: &str = "https://idp.shutter.test/";
const AUDIENCE: &str = "shutter-api";
const KID: &str = "shutter-test-key-1";
const PRIVATE_PEM: &[u8] = include_bytes!("fixtures/oidc_rsa_private.pem");
const PUBLIC_PEM: &[u8] = include_bytes!("fixtures/oidc_rsa_public.pem");
const OTHER_PRIVATE_PEM: &[u8] = include_bytes!("fixtures/oidc_other_rsa_private.pem");
const JWK: &str = include_str!("fixtures/oidc_rsa_public.jwk.json");

/// Serves `{"keys": keys}` on every request, until the test's runtime ends. Returns the JWKS
/// URL.
async fn spawn_jwks_server(keys: Value) -> String {
    let body = json!({"keys": keys}).to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                // Read the request head; the JWKS request has no body.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if buf.len() > 64 * 1024 {
                        return;
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: max-age=300\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/.well-known/jwks.json")
}

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

async fn spawn_oidc_app() -> TestApp {
    let jwks_url = spawn_jwks_server(json!([jwk(JWK)])).await;
    spawn_app_with(move |c| {
        c.auth.oidc = Some(OidcConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url,
            tier_claim: Some("plan".into()),
        });
    })
    .await
}

fn idp_claims(sub: &str, preferred_username: Option<&str>) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "email": format!("{sub}@idp.test"),
    });
    if let Some(name) = preferred_username {
        claims["preferred_username"] = json!(name);
    }
    claims
}

fn rs256(claims: &Value, pem: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn idp_token(claims: &Value) -> String {
    rs256(claims, PRIVATE_PEM, KID)
}

async fn assert_refused(app: &TestApp, token: &str, code: &str) {
    let resp = app.get("/v1/users/me", Some(token)).await;
    assert_problem(resp, 401, code).await;
}

#[tokio::test]
async fn an_idp_token_creates_the_user_on_first_sight() {
    let app = spawn_oidc_app().await;
    let token = idp_token(&idp_claims("idp-user-1", Some("OidcAlice")));
    let me = app.me(&token).await;
    assert_eq!(
        me["username"], "oidcalice",
        "the lowercased preferred_username: {me}"
    );
    assert_eq!(me["tier"], "basic");
    assert_uuid_v7(&me["id"]);

    // The same subject again, with a new token: the same user, not a second one.
    let mut claims = idp_claims("idp-user-1", Some("OidcAlice"));
    claims["iat"] = json!(unix_now() - 1);
    let again = app.me(&idp_token(&claims)).await;
    assert_eq!(again["id"], me["id"]);
    let profile = expect_status(
        app.get("/v1/users/by-username/oidcalice", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["id"], me["id"]);
}

#[tokio::test]
async fn an_idp_user_uses_every_endpoint() {
    let app = spawn_oidc_app().await;
    let token = idp_token(&idp_claims("idp-user-2", Some("photographer")));
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&token),
            &json!({"bio": "from the IdP"}),
        )
        .await;
    assert_eq!(
        expect_status(resp, StatusCode::OK).await["bio"],
        "from the IdP"
    );
    let post = app.create_post(&token, "posted with an IdP token").await;
    let comment = app
        .create_comment(&token, &id_of(&post), "and commented")
        .await;
    assert_eq!(comment["author"]["username"], "photographer");
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "basic");
    let resp = app
        .patch_json(
            &format!("/v1/posts/{}", id_of(&post)),
            Some(&token),
            &json!({"caption": "edited"}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
    let resp = app
        .delete(&format!("/v1/comments/{}", id_of(&comment)), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

fn assert_generated_username(username: &Value) {
    let name = username.as_str().unwrap();
    let suffix = name
        .strip_prefix("user_")
        .unwrap_or_else(|| panic!("generated username {name}"));
    assert_eq!(suffix.len(), 10, "{name}");
    assert!(
        suffix
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{name}"
    );
}

#[tokio::test]
async fn a_generated_username_cannot_be_predicted_from_the_subject() {
    // The same identity on two servers: a name derived from the identity would be the same.
    let mut names = Vec::new();
    for _ in 0..2 {
        let app = spawn_oidc_app().await;
        let me = app.me(&idp_token(&idp_claims("sub-same", None))).await;
        assert_generated_username(&me["username"]);
        // Stable for the account once created.
        assert_eq!(
            app.me(&idp_token(&idp_claims("sub-same", None))).await["username"],
            me["username"]
        );
        names.push(me["username"].clone());
    }
    assert_ne!(names[0], names[1], "generated names are random");
}

#[tokio::test]
async fn a_taken_invalid_or_missing_preferred_username_gets_a_generated_one() {
    let app = spawn_oidc_app().await;
    app.register("taken").await;
    let cases = [
        ("sub-taken", Some("Taken")),
        ("sub-invalid", Some("not valid!")),
        ("sub-short", Some("ab")),
        ("sub-missing", None),
    ];
    let mut names = std::collections::HashSet::new();
    for (sub, preferred) in cases {
        let me = app.me(&idp_token(&idp_claims(sub, preferred))).await;
        assert_generated_username(&me["username"]);
        assert!(names.insert(me["username"].clone()), "distinct names");
    }
    // Two subjects asking for the same free name: the first gets it.
    let first = app.me(&idp_token(&idp_claims("sub-a", Some("twin")))).await;
    let second = app.me(&idp_token(&idp_claims("sub-b", Some("twin")))).await;
    assert_eq!(first["username"], "twin");
    assert_generated_username(&second["username"]);
    assert_ne!(first["id"], second["id"]);
}

#[tokio::test]
async fn the_tier_comes_from_the_configured_claim() {
    let app = spawn_oidc_app().await;
    let mut claims = idp_claims("sub-premium", Some("payer"));
    claims["plan"] = json!("premium");
    let token = idp_token(&claims);
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "premium");
    assert_eq!(limits["limits"]["max_concurrent_uploads"], 50);
    assert_eq!(app.me(&token).await["tier"], "premium");

    let mut claims = idp_claims("sub-basic", Some("saver"));
    claims["plan"] = json!("basic");
    let limits = expect_status(
        app.get("/v1/limits", Some(&idp_token(&claims))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limits["tier"], "basic");
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let app = spawn_oidc_app().await;
    let claims = idp_claims("sub-forger", Some("forger"));
    // Claiming the known key id ...
    assert_refused(
        &app,
        &rs256(&claims, OTHER_PRIVATE_PEM, KID),
        "unauthenticated",
    )
    .await;
    // ... or an unknown one.
    assert_refused(
        &app,
        &rs256(&claims, OTHER_PRIVATE_PEM, "other-kid"),
        "unauthenticated",
    )
    .await;
    // No user was created along the way.
    assert_problem(
        app.get("/v1/users/by-username/forger", None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_audience_or_issuer_is_refused() {
    let app = spawn_oidc_app().await;
    let mut claims = idp_claims("sub-aud", Some("audience"));
    claims["aud"] = json!("some-other-api");
    assert_refused(&app, &idp_token(&claims), "unauthenticated").await;
    claims.as_object_mut().unwrap().remove("aud");
    assert_refused(&app, &idp_token(&claims), "unauthenticated").await;

    let mut claims = idp_claims("sub-iss", Some("issuer"));
    claims["iss"] = json!("https://evil.example/");
    assert_refused(&app, &idp_token(&claims), "unauthenticated").await;
    // The server's own issuer with the IdP's key is no better.
    claims["iss"] = json!(app.address);
    assert_refused(&app, &idp_token(&claims), "unauthenticated").await;
}

#[tokio::test]
async fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused() {
    let app = spawn_oidc_app().await;
    let claims = idp_claims("sub-confused", Some("confused"));
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let mut header = Header::new(alg);
        header.kid = Some(KID.to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(PUBLIC_PEM)).unwrap();
        assert_refused(&app, &token, "unauthenticated").await;
    }
    // The JWK's modulus bytes as the secret, too.
    let jwk = jwk(JWK);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(jwk["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    assert_refused(&app, &token, "unauthenticated").await;
}

#[tokio::test]
async fn alg_none_with_idp_claims_is_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let app = spawn_oidc_app().await;
    let claims = idp_claims("sub-none", Some("nobody"));
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": KID}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_refused(&app, &format!("{header}.{payload}."), "unauthenticated").await;
}

#[tokio::test]
async fn an_expired_idp_token_is_token_expired() {
    let app = spawn_oidc_app().await;
    let mut claims = idp_claims("sub-old", Some("oldtimer"));
    claims["iat"] = json!(unix_now() - 4000);
    claims["exp"] = json!(unix_now() - 120);
    assert_refused(&app, &idp_token(&claims), "token_expired").await;
    // Past the 5 s leeway, but only just.
    claims["exp"] = json!(unix_now() - 10);
    assert_refused(&app, &idp_token(&claims), "token_expired").await;
}

#[tokio::test]
async fn local_accounts_still_work_beside_the_idp() {
    let app = spawn_oidc_app().await;
    let (user, access, _) = app.register("localuser").await;
    assert_eq!(app.me(&access).await["id"], user["id"]);
    expect_status(app.login("localuser", PASSWORD).await, StatusCode::OK).await;
}

#[tokio::test]
async fn an_idp_user_deletes_the_account_with_a_fresh_token() {
    let app = spawn_oidc_app().await;
    let mut claims = idp_claims("sub-stale", Some("stale"));
    claims["iat"] = json!(unix_now() - 600);
    let stale = idp_token(&claims);
    let me = app.me(&stale).await;
    // A token issued more than 5 minutes ago does not delete the account.
    let resp = app
        .delete_json("/v1/users/me", Some(&stale), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = assert_problem_any(resp).await;
    assert!(
        body["code"] == "invalid_credentials" || body["code"] == "unauthenticated",
        "{body}"
    );
    assert_eq!(app.me(&stale).await["id"], me["id"]);

    let fresh = idp_token(&idp_claims("sub-stale", Some("stale")));
    let resp = app
        .delete_json("/v1/users/me", Some(&fresh), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/v1/users/{}", id_of(&me)), None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_idp_account_is_not_recreated_by_its_next_token() {
    let app = spawn_oidc_app().await;
    let token = idp_token(&idp_claims("sub-gone", Some("gone")));
    let me = app.me(&token).await;
    let resp = app
        .delete_json("/v1/users/me", Some(&token), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // The same identity's next token, fresh and valid, does not sign up again.
    let mut claims = idp_claims("sub-gone", Some("gone"));
    claims["iat"] = json!(unix_now() + 1);
    let next = idp_token(&claims);
    assert_refused(&app, &next, "unauthenticated").await;
    let resp = app
        .post_json("/v1/posts", Some(&next), &json!({"caption": "back"}))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
    assert_problem(
        app.get("/v1/users/by-username/gone", None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/users/{}", id_of(&me)), None).await,
        404,
        "not_found",
    )
    .await;
    // Other identities of the same provider still sign up.
    let other = app
        .me(&idp_token(&idp_claims("sub-new", Some("gone"))))
        .await;
    assert_eq!(other["username"], "gone");
}

/// A problem body of whatever code, checked for its shape.
async fn assert_problem_any(resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16();
    let content_type = header(&resp, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/problem+json"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(
        body["type"],
        format!("urn:shutter:error:{}", body["code"].as_str().unwrap())
    );
    body
}
