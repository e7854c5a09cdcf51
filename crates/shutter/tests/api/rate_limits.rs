//! Rate limits (SPEC 1): per IP, per login, per posting user and tier; headers on every `/v1`
//! response; operations endpoints never limited; a switch to turn them off.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn number_header(resp: &Response, name: &str) -> i64 {
    let text = header(resp, name).unwrap_or_else(|| panic!("{} has {name}", resp.url()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number: {text:?}"))
}

/// Asserts the three `RateLimit-*` headers and returns `(limit, remaining)`.
fn rate_headers(resp: &Response) -> (i64, i64) {
    let limit = number_header(resp, "ratelimit-limit");
    let remaining = number_header(resp, "ratelimit-remaining");
    let reset = number_header(resp, "ratelimit-reset");
    assert!(
        limit > 0 && remaining >= 0 && remaining <= limit,
        "{limit} {remaining}"
    );
    assert!(
        (0..=60).contains(&reset),
        "reset in seconds within the minute: {reset}"
    );
    (limit, remaining)
}

/// Asserts a 429 `rate_limited` with `Retry-After`, the headers and the limit it names.
async fn assert_rate_limited(resp: Response, value: u64) -> Value {
    let retry_after = number_header(&resp, "retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let (limit, remaining) = rate_headers(&resp);
    assert_eq!(remaining, 0);
    assert_eq!(limit, value as i64);
    let body = assert_problem(resp, 429, "rate_limited").await;
    let detail = &body["limit"];
    assert!(
        detail["name"].as_str().is_some_and(|n| !n.is_empty()),
        "limit.name: {body}"
    );
    assert_eq!(detail["value"], value, "{body}");
    assert!(detail["actual"].is_u64(), "limit.actual: {body}");
    body
}

#[tokio::test]
async fn the_per_ip_limit_answers_429_after_the_budget_and_spares_operations() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.per_ip_per_minute = 5;
    })
    .await;
    // Operations endpoints are never limited and use none of the budget.
    for _ in 0..8 {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let resp = app.get(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
    }
    let ghost = uuid::Uuid::now_v7();
    let path = format!("/v1/users/{ghost}");
    let mut last_remaining = i64::MAX;
    for _ in 0..5 {
        let resp = app.get(&path, None).await;
        let (limit, remaining) = rate_headers(&resp);
        assert_eq!(limit, 5);
        assert!(remaining < last_remaining, "remaining goes down");
        last_remaining = remaining;
        assert_problem(resp, 404, "not_found").await;
    }
    assert_eq!(last_remaining, 0);
    let resp = app.get(&path, None).await;
    assert_rate_limited(resp, 5).await;
    // Any other /v1 route shares the per-IP budget.
    let resp = app.get("/v1/users/by-username/someone", None).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Still healthy.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_v1_response_carries_the_rate_limit_headers() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
    })
    .await;
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "headers", "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (limit, _) = rate_headers(&resp);
    assert_eq!(limit, 1000, "the default per-IP limit");
    let resp = app.get("/v1/users/me", None).await;
    rate_headers(&resp);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.get("/v1/users/not-a-uuid", None).await;
    rate_headers(&resp);
}

#[tokio::test]
async fn login_is_limited_per_ip_and_lowercased_username() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.login_per_minute = 2;
    })
    .await;
    app.register("target").await;
    app.register("bystander").await;
    for _ in 0..2 {
        let resp = app.login("target", "wrong password").await;
        rate_headers(&resp);
        assert_problem(resp, 401, "invalid_credentials").await;
    }
    assert_rate_limited(app.login("target", "wrong password").await, 2).await;
    // The right password does not get around the limit, nor does the case of the name.
    assert_rate_limited(app.login("target", PASSWORD).await, 2).await;
    assert_rate_limited(app.login("TARGET", PASSWORD).await, 2).await;
    // Another username from the same IP has its own budget.
    let resp = app.login("bystander", PASSWORD).await;
    expect_status(resp, StatusCode::OK).await;
}

#[tokio::test]
async fn posting_is_limited_per_user_by_tier() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = true;
        c.tiers.basic.posts_per_minute = 2;
        c.tiers.premium.posts_per_minute = 5;
    })
    .await;
    let (basic, basic_token, _) = app.register("basicposter").await;
    let (_, other_token, _) = app.register("otherposter").await;
    let (_, premium_token, _) = app.register("premiumposter").await;
    app.set_tier_cli("premiumposter", "premium").await;

    let limits = expect_status(
        app.get("/v1/limits", Some(&basic_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limits["limits"]["posts_per_minute"], 2);

    for i in 0..2 {
        app.create_post(&basic_token, &format!("basic {i}")).await;
    }
    let resp = app
        .post_json(
            "/v1/posts",
            Some(&basic_token),
            &json!({"caption": "one too many"}),
        )
        .await;
    assert_rate_limited(resp, 2).await;
    let profile = expect_status(
        app.get(&format!("/v1/users/{}", id_of(&basic)), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["posts_count"], 2, "a refused post creates nothing");
    // Reading is not posting.
    assert_eq!(app.me(&basic_token).await["username"], "basicposter");

    // Another user of the same tier is not affected.
    app.create_post(&other_token, "mine").await;

    // Premium gets more.
    for i in 0..5 {
        app.create_post(&premium_token, &format!("premium {i}"))
            .await;
    }
    let resp = app
        .post_json(
            "/v1/posts",
            Some(&premium_token),
            &json!({"caption": "sixth"}),
        )
        .await;
    assert_rate_limited(resp, 5).await;
}

#[tokio::test]
async fn nothing_is_limited_when_rate_limits_are_off() {
    let app = spawn_app_with(|c| {
        c.rate_limits.enabled = false;
        c.rate_limits.per_ip_per_minute = 2;
        c.rate_limits.login_per_minute = 1;
        c.tiers.basic.posts_per_minute = 1;
    })
    .await;
    let (_, token, _) = app.register("unlimited").await;
    for i in 0..4 {
        app.create_post(&token, &format!("post {i}")).await;
    }
    for _ in 0..3 {
        let resp = app.login("unlimited", "wrong password").await;
        assert_problem(resp, 401, "invalid_credentials").await;
    }
    for _ in 0..5 {
        let resp = app.get("/v1/users/me", Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}
