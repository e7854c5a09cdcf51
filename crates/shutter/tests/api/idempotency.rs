//! `Idempotency-Key` on `POST /v1/posts` and `POST /v1/posts/{id}/comments` (SPEC 1).

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Response {
    app.authed(Method::POST, path, Some(token))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Status, `Idempotent-Replayed` header and JSON body.
async fn parts(resp: Response) -> (StatusCode, Option<String>, Value) {
    let status = resp.status();
    let replayed = header(&resp, "idempotent-replayed");
    let body: Value = resp.json().await.unwrap();
    (status, replayed, body)
}

async fn posts_of(app: &TestApp, user: &Value) -> Vec<Value> {
    app.collect_pages(&format!("/v1/users/{}/posts", id_of(user)), None, 100)
        .await
}

#[tokio::test]
async fn a_replayed_post_returns_the_first_response_and_creates_nothing() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("retrier").await;
    let body = json!({"caption": "only once"});
    let first = post_with_key(&app, "/v1/posts", &token, "key-1", &body).await;
    let (status1, replayed1, body1) = parts(first).await;
    assert_eq!(status1, StatusCode::CREATED, "{body1}");
    assert_ne!(
        replayed1.as_deref(),
        Some("true"),
        "the first answer is not a replay"
    );

    for _ in 0..2 {
        let again = post_with_key(&app, "/v1/posts", &token, "key-1", &body).await;
        let (status2, replayed2, body2) = parts(again).await;
        assert_eq!(status2, StatusCode::CREATED);
        assert_eq!(replayed2.as_deref(), Some("true"));
        assert_eq!(body2, body1, "same body, byte for byte in JSON terms");
    }
    let posts = posts_of(&app, &user).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["id"], body1["post"]["id"]);
    assert_eq!(app.me(&token).await["posts_count"], 1);

    // Another key is another request.
    let other = post_with_key(&app, "/v1/posts", &token, "key-2", &body).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(posts_of(&app, &user).await.len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_idempotency_key_reused() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("reuser").await;
    let first = post_with_key(&app, "/v1/posts", &token, "k", &json!({"caption": "a"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let resp = post_with_key(&app, "/v1/posts", &token, "k", &json!({"caption": "b"})).await;
    assert_problem(resp, 422, "idempotency_key_reused").await;
    let posts = posts_of(&app, &user).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["caption"], "a");
}

#[tokio::test]
async fn a_key_is_1_to_255_characters() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("keysmith").await;
    let too_long = "k".repeat(256);
    for bad in [too_long.as_str(), ""] {
        let resp = post_with_key(&app, "/v1/posts", &token, bad, &json!({"caption": "x"})).await;
        assert_problem(resp, 400, "validation_failed").await;
    }
    assert!(posts_of(&app, &user).await.is_empty(), "nothing created");
    let longest = "k".repeat(255);
    let resp = post_with_key(
        &app,
        "/v1/posts",
        &token,
        &longest,
        &json!({"caption": "x"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = post_with_key(
        &app,
        "/v1/posts",
        &token,
        &longest,
        &json!({"caption": "x"}),
    )
    .await;
    assert_eq!(
        header(&resp, "idempotent-replayed").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn keys_of_different_users_are_independent() {
    let app = spawn_app().await;
    let (alice, alice_token, _) = app.register("alice").await;
    let (bob, bob_token, _) = app.register("bob").await;
    let body = json!({"caption": "same words"});
    let (s1, r1, b1) =
        parts(post_with_key(&app, "/v1/posts", &alice_token, "shared", &body).await).await;
    let (s2, r2, b2) =
        parts(post_with_key(&app, "/v1/posts", &bob_token, "shared", &body).await).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_ne!(r1.as_deref(), Some("true"));
    assert_ne!(r2.as_deref(), Some("true"));
    assert_ne!(b1["post"]["id"], b2["post"]["id"]);
    assert_eq!(b2["post"]["author"]["id"], bob["id"]);
    assert_eq!(posts_of(&app, &alice).await.len(), 1);
    assert_eq!(posts_of(&app, &bob).await.len(), 1);
    // And a different body under Bob's key is Bob's problem only.
    let resp = post_with_key(
        &app,
        "/v1/posts",
        &bob_token,
        "shared",
        &json!({"caption": "other"}),
    )
    .await;
    assert_problem(resp, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn a_refused_request_under_a_key_stays_refused_and_creates_nothing() {
    // Whether an error is stored and replayed or simply re-checked is the server's choice;
    // either way the answer stays 400 and nothing is created.
    let app = spawn_app().await;
    let (user, token, _) = app.register("fixer").await;
    let resp = post_with_key(&app, "/v1/posts", &token, "bad-1", &json!({"caption": ""})).await;
    assert_problem(resp, 400, "validation_failed").await;
    let resp = post_with_key(&app, "/v1/posts", &token, "bad-1", &json!({"caption": ""})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(posts_of(&app, &user).await.is_empty());
}

#[tokio::test]
async fn a_replayed_comment_returns_the_first_response_and_creates_nothing() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, commenter, _) = app.register("commenter").await;
    let post = app.create_post(&author, "post").await;
    let path = format!("/v1/posts/{}/comments", id_of(&post));
    let body = json!({"text": "just once"});
    let (s1, r1, b1) = parts(post_with_key(&app, &path, &commenter, "c-1", &body).await).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_ne!(r1.as_deref(), Some("true"));
    let (s2, r2, b2) = parts(post_with_key(&app, &path, &commenter, "c-1", &body).await).await;
    assert_eq!(s2, StatusCode::CREATED);
    assert_eq!(r2.as_deref(), Some("true"));
    assert_eq!(b2, b1);
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 1);

    let resp = post_with_key(&app, &path, &commenter, "c-1", &json!({"text": "changed"})).await;
    assert_problem(resp, 422, "idempotency_key_reused").await;
    let too_long = "k".repeat(256);
    let resp = post_with_key(&app, &path, &commenter, &too_long, &body).await;
    assert_problem(resp, 400, "validation_failed").await;
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 1);
}

#[tokio::test]
async fn the_same_key_on_another_post_is_another_request() {
    // The key is scoped to the user, and the request includes its path: reusing a key for a
    // comment on another post is a different request.
    let app = spawn_app().await;
    let (_, token, _) = app.register("scoper").await;
    let p1 = app.create_post(&token, "one").await;
    let p2 = app.create_post(&token, "two").await;
    let body = json!({"text": "same text"});
    let first = post_with_key(
        &app,
        &format!("/v1/posts/{}/comments", id_of(&p1)),
        &token,
        "k",
        &body,
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = post_with_key(
        &app,
        &format!("/v1/posts/{}/comments", id_of(&p2)),
        &token,
        "k",
        &body,
    )
    .await;
    assert_problem(second, 422, "idempotency_key_reused").await;
    assert_eq!(app.get_post(&id_of(&p2), None).await["comment_count"], 0);
}

/// A client sends a keyed request and drops the connection before the answer, several times
/// over: each time the request's work either completes (and a retry replays it) or never
/// starts — the key is never left "in flight", and retries never create a second post.
#[tokio::test]
async fn a_request_whose_client_went_away_is_replayed_not_repeated() {
    use tokio::io::AsyncWriteExt;

    let app = spawn_app().await;
    let (user, token, _) = app.register("dropper").await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    for round in 0..10 {
        let key = format!("dropped-{round}");
        let body = json!({ "caption": format!("round {round}") }).to_string();
        let request = format!(
            "POST /v1/posts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        // Gone before the answer.
        drop(socket);

        // The retry waits out the first run (409 while it runs) and then gets its answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (status, replayed, _) = loop {
            let resp = post_with_key(
                &app,
                "/v1/posts",
                &token,
                &key,
                &serde_json::from_str(&body).unwrap(),
            )
            .await;
            if resp.status() != StatusCode::CONFLICT {
                break parts(resp).await;
            }
            let problem: Value = resp.json().await.unwrap();
            assert_eq!(problem["code"], "conflict", "{problem}");
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the key stayed in flight after its client went away"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(status, StatusCode::CREATED, "round {round}");
        let captions: Vec<Value> = posts_of(&app, &user)
            .await
            .into_iter()
            .filter(|p| p["caption"] == format!("round {round}"))
            .collect();
        assert_eq!(
            captions.len(),
            1,
            "round {round}: one post, replayed {replayed:?}"
        );
    }
}
