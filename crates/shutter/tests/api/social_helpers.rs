//! Shared helpers of the social graph, likes and feed tests (SPEC 3): follows, likes, reading
//! feeds and lists whole, and polling for the properties that may take a moment ("within 2 s",
//! "exact within 1 s"). Polls are generous (the SPEC bounds are measured by the benchmark, not
//! by these tests): they only decide when to stop waiting, the assertion comes after.

#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::upload_helpers::{put_ticket, testdata};

/// The feed threshold of these tests: authors with 3 followers or more are pulled at read time.
pub const THRESHOLD: u64 = 3;

/// How long a "within 2 s" (or "within 1 s") property is waited for before asserting.
pub const SETTLE: Duration = Duration::from_secs(5);

/// How often a poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A test server whose `feed.fanout_threshold` is [`THRESHOLD`], so the push path, the pull
/// path and crossings between them are all reachable with a handful of users.
pub async fn spawn_social_app() -> TestApp {
    spawn_app_with(|c| c.feed.fanout_threshold = THRESHOLD).await
}

/// A registered user: the User body and an access token.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: Value,
    pub token: String,
}

impl Member {
    pub fn id(&self) -> String {
        id_of(&self.user)
    }
}

pub async fn member(app: &TestApp, username: &str) -> Member {
    let (user, token, _) = app.register(username).await;
    Member { user, token }
}

/// Registers `<prefix>0`, `<prefix>1`, … concurrently, returned in that order.
pub async fn members(app: &TestApp, prefix: &str, n: usize) -> Vec<Member> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    futures::future::join_all(names.iter().map(|name| member(app, name))).await
}

// ---------------------------------------------------------------------------------------------
// Follows

pub async fn follow_resp(app: &TestApp, token: &str, user_id: &str) -> reqwest::Response {
    app.authed(
        Method::PUT,
        &format!("/v1/users/{user_id}/follow"),
        Some(token),
    )
    .send()
    .await
    .expect("PUT follow")
}

/// `PUT /v1/users/{id}/follow` that must answer 204.
pub async fn follow(app: &TestApp, who: &Member, whom: &Member) {
    let resp = follow_resp(app, &who.token, &whom.id()).await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
}

/// Follows `whom` with each of `who` in turn, a few milliseconds apart: follows and likes
/// are stamped to the millisecond, and "newest first" says nothing about two in the same
/// millisecond, so tests that check the order keep them apart.
pub async fn follow_in_turn(app: &TestApp, who: &[Member], whom: &Member) {
    for fan in who {
        follow(app, fan, whom).await;
        distinct_ms().await;
    }
}

/// Lets the clock move on by a few milliseconds (see [`follow_in_turn`]).
pub async fn distinct_ms() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// `DELETE /v1/users/{id}/follow` that must answer 204.
pub async fn unfollow(app: &TestApp, who: &Member, whom: &Member) {
    let resp = app
        .delete(&format!("/v1/users/{}/follow", whom.id()), Some(&who.token))
        .await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
}

/// `GET /v1/users/{id}` (public) that must answer 200.
pub async fn profile(app: &TestApp, user_id: &str) -> Value {
    expect_status(
        app.get(&format!("/v1/users/{user_id}"), None).await,
        StatusCode::OK,
    )
    .await
}

/// `(followers_count, following_count)` of a user, from its public profile.
pub async fn counts(app: &TestApp, user_id: &str) -> (i64, i64) {
    let user = profile(app, user_id).await;
    (
        user["followers_count"].as_i64().expect("followers_count"),
        user["following_count"].as_i64().expect("following_count"),
    )
}

/// Every follower of a user (ids), read with pages of `limit`.
pub async fn followers_ids(app: &TestApp, user_id: &str, limit: u32) -> Vec<String> {
    let items = app
        .collect_pages(&format!("/v1/users/{user_id}/followers"), None, limit)
        .await;
    summary_ids(&items)
}

/// Everyone a user follows (ids), read with pages of `limit`.
pub async fn following_ids(app: &TestApp, user_id: &str, limit: u32) -> Vec<String> {
    let items = app
        .collect_pages(&format!("/v1/users/{user_id}/following"), None, limit)
        .await;
    summary_ids(&items)
}

/// The ids of a list of UserSummary, checking each has exactly `{id, username, display_name}`.
pub fn summary_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|s| {
            let object = s.as_object().expect("a UserSummary is an object");
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["display_name", "id", "username"],
                "UserSummary is {{id, username, display_name}}: {s}"
            );
            assert!(s["username"].is_string(), "{s}");
            id_of(s)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Likes

pub async fn like_resp(app: &TestApp, token: &str, post_id: &str) -> reqwest::Response {
    app.authed(
        Method::PUT,
        &format!("/v1/posts/{post_id}/like"),
        Some(token),
    )
    .send()
    .await
    .expect("PUT like")
}

/// `PUT /v1/posts/{id}/like` that must answer 204.
pub async fn like(app: &TestApp, token: &str, post_id: &str) {
    expect_status(like_resp(app, token, post_id).await, StatusCode::NO_CONTENT).await;
}

/// `DELETE /v1/posts/{id}/like` that must answer 204.
pub async fn unlike(app: &TestApp, token: &str, post_id: &str) {
    let resp = app
        .delete(&format!("/v1/posts/{post_id}/like"), Some(token))
        .await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
}

/// Every liker of a post (ids), read with pages of `limit`.
pub async fn likers_ids(app: &TestApp, post_id: &str, limit: u32) -> Vec<String> {
    let items = app
        .collect_pages(&format!("/v1/posts/{post_id}/likes"), None, limit)
        .await;
    summary_ids(&items)
}

/// Polls the post (as `viewer`) until its `like_count` is `expected` or [`SETTLE`] passes;
/// returns the last post read.
pub async fn wait_like_count(
    app: &TestApp,
    post_id: &str,
    viewer: Option<&str>,
    expected: i64,
) -> Value {
    eventually(
        || app.get_post(post_id, viewer),
        |post| post["like_count"].as_i64() == Some(expected),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Posts, feeds and explore

/// The ids of a list of items, in order.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

/// Newest first by `(created_at, id)`, as SPEC 3 orders feeds (ids are time-sortable UUIDv7
/// text; timestamps are fixed-width RFC 3339, so both compare as strings).
pub fn newest_first(posts: &[&Value]) -> Vec<String> {
    let mut keyed: Vec<(String, String)> = posts
        .iter()
        .map(|p| {
            (
                p["created_at"].as_str().expect("created_at").to_owned(),
                id_of(p),
            )
        })
        .collect();
    keyed.sort_unstable_by(|a, b| b.cmp(a));
    keyed.into_iter().map(|(_, id)| id).collect()
}

pub fn assert_unique(ids: &[String], what: &str) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{what} repeats an item: {ids:?}");
}

/// The whole home feed of `token` (ids), read with pages of `limit`.
pub async fn feed_ids(app: &TestApp, token: &str, limit: u32) -> Vec<String> {
    let items = app.collect_pages("/v1/feed", Some(token), limit).await;
    ids(&items)
}

/// The whole explore list (ids), read with pages of `limit`.
pub async fn explore_ids(app: &TestApp, token: Option<&str>, limit: u32) -> Vec<String> {
    let items = app.collect_pages("/v1/explore", token, limit).await;
    ids(&items)
}

/// Polls the whole feed (pages of `limit`) until it is exactly `expected` or [`SETTLE`]
/// passes; returns the last feed read, for the caller to assert on.
pub async fn wait_feed(app: &TestApp, token: &str, limit: u32, expected: &[String]) -> Vec<String> {
    eventually(|| feed_ids(app, token, limit), |feed| feed == expected).await
}

/// Waits for the feed to be exactly `expected` (pages of `limit`) and asserts it.
pub async fn assert_feed(app: &TestApp, reader: &Member, limit: u32, expected: &[String]) {
    let feed = wait_feed(app, &reader.token, limit, expected).await;
    assert_eq!(
        feed, expected,
        "home feed of {} (pages of {limit}): newest first, exactly the followees' and own posts",
        reader.user["username"]
    );
}

/// Polls explore until it is exactly `expected` or [`SETTLE`] passes; returns the last read.
pub async fn wait_explore(app: &TestApp, limit: u32, expected: &[String]) -> Vec<String> {
    eventually(|| explore_ids(app, None, limit), |list| list == expected).await
}

/// Reads with `read` until `done` holds or [`SETTLE`] passes; returns the last value read.
pub async fn eventually<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    loop {
        let value = read().await;
        if done(&value) || start.elapsed() > SETTLE {
            return value;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `DELETE /v1/posts/{id}` that must answer 204.
pub async fn delete_post(app: &TestApp, token: &str, post_id: &str) {
    let resp = app
        .delete(&format!("/v1/posts/{post_id}"), Some(token))
        .await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
}

/// `DELETE /v1/users/me` with the right password, which must answer 204.
pub async fn delete_account(app: &TestApp, token: &str) {
    let resp = app
        .delete_json("/v1/users/me", Some(token), &json!({"password": PASSWORD}))
        .await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
}

/// The small JPEG the photo-post tests publish with.
pub const PHOTO: &str = "photos/kleiber_1080x1080.jpg";

/// Creates a post with one (not yet uploaded) JPEG: it is `pending`. Returns the post and its
/// upload ticket.
pub async fn create_pending_post(app: &TestApp, token: &str, caption: &str) -> (Value, Value) {
    let size = testdata(PHOTO).len();
    let resp = app
        .post_json(
            "/v1/posts",
            Some(token),
            &json!({
                "caption": caption,
                "media": [{"filename": "bird.jpg", "content_type": "image/jpeg", "size": size}],
            }),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    let post = body["post"].clone();
    assert_eq!(
        post["status"], "pending",
        "a post with media starts pending: {post}"
    );
    let tickets = body["uploads"].as_array().expect("uploads");
    assert_eq!(tickets.len(), 1, "{body}");
    (post, tickets[0].clone())
}

/// Uploads the photo of a pending post and waits (up to a minute: the image is processed in a
/// debug build) until the post is `published`; returns it.
pub async fn publish_pending_post(
    app: &TestApp,
    token: &str,
    post: &Value,
    ticket: &Value,
) -> Value {
    let resp = put_ticket(app, ticket, testdata(PHOTO)).await;
    expect_status(resp, StatusCode::OK).await;
    let id = id_of(post);
    let start = Instant::now();
    loop {
        let current = app.get_post(&id, Some(token)).await;
        if current["status"] != "pending" || start.elapsed() > Duration::from_secs(60) {
            assert_eq!(current["status"], "published", "{current}");
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
