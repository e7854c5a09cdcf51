//! Who may do what (SPEC 1–5), as one table: every operation of the OpenAPI document ×
//! caller (the resource's owner, another user, an anonymous client, an admin) × the state of
//! the resource it addresses (posts pending, published, failed, deleted; files pending,
//! uploading, ready, failed, deleted, private, public; comments on one's own and on others'
//! posts; signed URLs intact and tampered with).
//!
//! One server, the resources made once (a row that deletes gets a resource of its own). Every
//! row is sent, every answer that differs from the table is collected, and the test fails
//! once with all of them. The test also fails when the OpenAPI document lists an operation
//! that has no row, so a new route cannot go without its authorization rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::helpers::*;
use crate::upload_helpers::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// The user who owns the resource (for `/v1/users/me`: the account itself).
    Owner,
    /// Another signed-in user.
    Other,
    /// No `Authorization` header.
    Anonymous,
    /// A signed-in admin who does not own the resource.
    Admin,
}

use Caller::*;

/// One request of the matrix and the answer SPEC gives it.
#[derive(Clone, Debug)]
struct Row {
    method: &'static str,
    /// The path as the OpenAPI document spells it; `{id}` / `{username}` is filled from `state`.
    path: &'static str,
    caller: Caller,
    /// Which resource fills the path (see [`World::make`]); `-` for none.
    state: &'static str,
    status: u16,
    /// The problem's `code` (errors only).
    code: Option<&'static str>,
}

/// The usual code of an error status in this table.
fn default_code(status: u16) -> Option<&'static str> {
    match status {
        400 => Some("validation_failed"),
        401 => Some("unauthenticated"),
        403 => Some("forbidden"),
        404 => Some("not_found"),
        409 => Some("conflict"),
        _ => None,
    }
}

/// Rows of one operation on one resource state, for the callers in the order owner, other,
/// anonymous, admin; `0` leaves a caller out.
fn rows(
    table: &mut Vec<Row>,
    method: &'static str,
    path: &'static str,
    state: &'static str,
    statuses: [u16; 4],
) {
    for (caller, status) in [Owner, Other, Anonymous, Admin].into_iter().zip(statuses) {
        if status != 0 {
            table.push(Row {
                method,
                path,
                caller,
                state,
                status,
                code: default_code(status),
            });
        }
    }
}

/// A single row with a code of its own.
fn row(
    table: &mut Vec<Row>,
    (method, path): (&'static str, &'static str),
    caller: Caller,
    state: &'static str,
    status: u16,
    code: &'static str,
) {
    table.push(Row {
        method,
        path,
        caller,
        state,
        status,
        code: Some(code),
    });
}

/// The whole matrix: one line per operation and resource state, the answers of the owner,
/// another user, an anonymous client and an admin in that order (`0`: no row for that caller).
#[rustfmt::skip]
fn matrix() -> Vec<Row> {
    let mut t = Vec::new();
    let t = &mut t;

    // --- Accounts (SPEC 2). Public endpoints answer anyone; *(auth)* ones 401 without a token.
    rows(t, "POST", "/v1/auth/register", "-", [0, 0, 201, 0]);
    rows(t, "POST", "/v1/auth/login", "-", [0, 0, 200, 0]);
    rows(t, "POST", "/v1/auth/refresh", "refresh:owner", [0, 0, 200, 0]);
    rows(t, "POST", "/v1/auth/refresh", "refresh:bogus", [0, 0, 401, 0]);
    rows(t, "POST", "/v1/auth/logout", "refresh:owner", [0, 0, 204, 0]);
    rows(t, "GET", "/v1/users/me", "-", [200, 200, 401, 200]);
    rows(t, "PATCH", "/v1/users/me", "-", [200, 200, 401, 200]);
    rows(t, "DELETE", "/v1/users/me", "account:throwaway", [204, 0, 401, 0]);
    row(t, ("DELETE", "/v1/users/me"), Owner, "account:wrong-password", 401, "invalid_credentials");
    rows(t, "GET", "/v1/limits", "-", [200, 200, 401, 200]);
    rows(t, "GET", "/v1/users/{id}", "user:owner", [200, 200, 200, 200]);
    rows(t, "GET", "/v1/users/{id}", "user:deleted", [404, 404, 404, 404]);
    let by_name = "/v1/users/by-username/{username}";
    rows(t, "GET", by_name, "user:owner", [200, 200, 200, 200]);
    rows(t, "GET", by_name, "user:deleted", [404, 404, 404, 404]);
    // Only admins change tiers and roles, their own included.
    let admin = "/v1/admin/users/{id}";
    rows(t, "PATCH", admin, "user:owner", [403, 403, 401, 200]);
    rows(t, "PATCH", admin, "user:deleted", [0, 0, 401, 404]);

    // --- Posts (SPEC 3). Others see only published posts (else 404, never 403); only the
    // author edits; the author or an admin deletes.
    rows(t, "POST", "/v1/posts", "-", [201, 201, 401, 201]);
    let post = "/v1/posts/{id}";
    rows(t, "GET", post, "post:published", [200, 200, 200, 200]);
    rows(t, "PATCH", post, "post:published", [200, 403, 401, 403]);
    rows(t, "DELETE", post, "post:published", [204, 403, 401, 204]);
    for hidden in ["post:pending", "post:failed"] {
        rows(t, "GET", post, hidden, [200, 404, 404, 404]);
        rows(t, "PATCH", post, hidden, [200, 404, 401, 404]);
        rows(t, "DELETE", post, hidden, [204, 404, 401, 204]);
    }
    rows(t, "GET", post, "post:deleted", [404, 404, 404, 404]);
    rows(t, "PATCH", post, "post:deleted", [404, 404, 401, 404]);
    rows(t, "DELETE", post, "post:deleted", [404, 404, 401, 404]);
    let of_user = "/v1/users/{id}/posts";
    rows(t, "GET", of_user, "user:owner", [200, 200, 200, 200]);
    rows(t, "GET", of_user, "user:deleted", [404, 404, 404, 404]);

    // --- Comments: on a post one can see; deleted by the comment's author, the post's author
    // or an admin.
    let comments = "/v1/posts/{id}/comments";
    rows(t, "POST", comments, "post:published", [201, 201, 401, 201]);
    rows(t, "GET", comments, "post:published", [200, 200, 200, 200]);
    for hidden in ["post:pending", "post:failed"] {
        rows(t, "POST", comments, hidden, [201, 404, 401, 404]);
        rows(t, "GET", comments, hidden, [200, 404, 404, 404]);
    }
    rows(t, "POST", comments, "post:deleted", [404, 404, 401, 404]);
    rows(t, "GET", comments, "post:deleted", [404, 404, 404, 404]);
    let comment = "/v1/comments/{id}";
    // The owner wrote the comment, on their own post.
    rows(t, "DELETE", comment, "comment:own-on-own-post", [204, 403, 401, 204]);
    // A third user commented on the owner's post: the owner deletes it as the post's author.
    rows(t, "DELETE", comment, "comment:third-on-own-post", [204, 403, 401, 204]);
    // The owner commented on the other user's post: both may delete it.
    rows(t, "DELETE", comment, "comment:own-on-others-post", [204, 204, 401, 204]);
    // On the owner's pending post, which only the owner can see.
    rows(t, "DELETE", comment, "comment:own-on-own-pending-post", [204, 404, 401, 204]);
    rows(t, "DELETE", comment, "comment:deleted", [404, 404, 401, 404]);

    // --- Likes and follows.
    let like = "/v1/posts/{id}/like";
    for method in ["PUT", "DELETE"] {
        rows(t, method, like, "post:published", [204, 204, 401, 204]);
        rows(t, method, like, "post:pending", [204, 404, 401, 404]);
        rows(t, method, like, "post:failed", [204, 404, 401, 404]);
        rows(t, method, like, "post:deleted", [404, 404, 401, 404]);
    }
    let likes = "/v1/posts/{id}/likes";
    rows(t, "GET", likes, "post:published", [200, 200, 200, 200]);
    rows(t, "GET", likes, "post:pending", [200, 404, 404, 404]);
    rows(t, "GET", likes, "post:failed", [200, 404, 404, 404]);
    rows(t, "GET", likes, "post:deleted", [404, 404, 404, 404]);
    let follow = "/v1/users/{id}/follow";
    // Following yourself is a validation error; unfollowing is idempotent, yourself included.
    rows(t, "PUT", follow, "user:owner", [400, 204, 401, 204]);
    rows(t, "DELETE", follow, "user:owner", [204, 204, 401, 204]);
    rows(t, "PUT", follow, "user:deleted", [0, 404, 401, 404]);
    rows(t, "DELETE", follow, "user:deleted", [0, 404, 401, 404]);
    for list in ["/v1/users/{id}/followers", "/v1/users/{id}/following"] {
        rows(t, "GET", list, "user:owner", [200, 200, 200, 200]);
        rows(t, "GET", list, "user:deleted", [404, 404, 404, 404]);
    }
    rows(t, "GET", "/v1/feed", "-", [200, 200, 401, 200]);
    rows(t, "GET", "/v1/explore", "-", [200, 200, 200, 200]);

    // --- Files (SPEC 4). The owner sees any state; anyone else only a public, ready file, and
    // gets 404 for everything else. Changing someone else's file: 403 when it is one they can
    // see, 404 when not.
    rows(t, "POST", "/v1/files", "-", [201, 201, 401, 201]);
    rows(t, "GET", "/v1/files", "-", [200, 200, 401, 200]);
    let file = "/v1/files/{id}";
    let complete = "/v1/files/{id}/complete";
    let content = "/v1/files/{id}/content";
    for hidden in [
        "file:pending-private",
        "file:pending-public",
        "file:uploading",
        "file:ready-private",
        "file:failed-public",
    ] {
        rows(t, "GET", file, hidden, [200, 404, 404, 404]);
        rows(t, "PATCH", file, hidden, [200, 404, 401, 404]);
        rows(t, "DELETE", file, hidden, [204, 404, 401, 404]);
        rows(t, "POST", complete, hidden, [200, 404, 401, 404]);
        // Only ready files serve bytes, and only to the owner unless public.
        let owner = if hidden == "file:ready-private" { 200 } else { 404 };
        rows(t, "GET", content, hidden, [owner, 404, 404, 404]);
    }
    rows(t, "GET", file, "file:ready-public", [200, 200, 200, 200]);
    rows(t, "PATCH", file, "file:ready-public", [200, 403, 401, 403]);
    rows(t, "DELETE", file, "file:ready-public", [204, 403, 401, 403]);
    rows(t, "POST", complete, "file:ready-public", [200, 403, 401, 403]);
    rows(t, "GET", content, "file:ready-public", [200, 200, 200, 200]);
    // A post's photo: its owner must delete the post instead.
    rows(t, "DELETE", file, "file:in-post", [409, 404, 401, 404]);
    rows(t, "GET", file, "file:deleted", [404, 404, 404, 404]);
    rows(t, "PATCH", file, "file:deleted", [404, 404, 401, 404]);
    rows(t, "DELETE", file, "file:deleted", [404, 404, 401, 404]);
    rows(t, "POST", complete, "file:deleted", [404, 404, 401, 404]);
    rows(t, "GET", content, "file:deleted", [404, 404, 404, 404]);
    // Signed download URLs are the authorisation: no token needed, anyone holding one may use it.
    rows(t, "GET", content, "signed:private", [200, 200, 200, 200]);
    rows(t, "GET", content, "signed:deleted", [0, 0, 404, 0]);
    let signed = ("GET", content);
    row(t, signed, Anonymous, "signed:tampered", 403, "invalid_signature");
    row(t, signed, Other, "signed:tampered", 403, "invalid_signature");
    row(t, signed, Anonymous, "signed:tampered-deleted", 403, "invalid_signature");
    // Presigned upload URLs: no token; the signature decides.
    rows(t, "PUT", content, "ticket:open", [0, 0, 200, 0]);
    rows(t, "PUT", content, "ticket:done", [0, 0, 409, 0]);
    let put = ("PUT", content);
    row(t, put, Anonymous, "ticket:tampered", 403, "invalid_signature");
    row(t, put, Other, "ticket:tampered", 403, "invalid_signature");
    row(t, put, Anonymous, "ticket:unsigned", 403, "invalid_signature");
    row(t, put, Anonymous, "ticket:tampered-deleted", 403, "invalid_signature");

    // --- tus (SPEC 4): a Bearer token on each request; an upload is its owner's alone.
    rows(t, "OPTIONS", "/v1/tus", "-", [204, 204, 204, 204]);
    rows(t, "POST", "/v1/tus", "-", [201, 201, 401, 201]);
    let upload = "/v1/tus/{id}";
    rows(t, "OPTIONS", upload, "file:uploading", [204, 204, 204, 204]);
    rows(t, "HEAD", upload, "file:uploading", [200, 404, 401, 404]);
    rows(t, "PATCH", upload, "file:uploading", [204, 404, 401, 404]);
    rows(t, "DELETE", upload, "file:uploading", [204, 404, 401, 404]);
    rows(t, "HEAD", upload, "file:ready-public", [200, 404, 401, 404]);
    rows(t, "HEAD", upload, "file:deleted", [404, 404, 401, 404]);
    rows(t, "DELETE", upload, "file:deleted", [404, 404, 401, 404]);

    // --- Live events: the user's own stream. A plain GET of /v1/ws is no handshake: 400.
    rows(t, "GET", "/v1/events", "-", [200, 200, 401, 200]);
    rows(t, "GET", "/v1/ws", "-", [400, 400, 401, 400]);

    std::mem::take(t)
}

/// Rows whose mismatch is a known, open bug: `(method, path, caller, state, why)`. Empty: every
/// row answers as the specification says. An entry goes away with its fix; a listed row that
/// passes fails the test, so the list cannot go stale.
const KNOWN_FAILURES: &[(&str, &str, Caller, &str, &str)] = &[];

/// Why the row is a known failure, if it is one.
fn known_failure(row: &Row) -> Option<&'static str> {
    KNOWN_FAILURES
        .iter()
        .find(|(m, p, c, s, _)| {
            *m == row.method && *p == row.path && *c == row.caller && *s == row.state
        })
        .map(|known| known.4)
}

/// What a row's path and body are made of.
#[derive(Clone, Debug, Default)]
struct Target {
    /// Fills `{id}` / `{username}`; also the refresh token of `refresh:*`.
    value: String,
    /// A signed URL's query.
    query: Option<String>,
    /// The bytes and content type of a presigned `PUT`.
    upload: Option<(Vec<u8>, String)>,
    /// The token of the resource's owner when it is not the usual owner.
    owner_token: Option<String>,
}

impl Target {
    fn id(value: String) -> Target {
        Target {
            value,
            ..Target::default()
        }
    }
}

/// The users of the matrix and the resources they own.
struct World {
    app: TestApp,
    owner: String,
    other: String,
    admin: String,
    third: String,
    owner_id: String,
    ghost_id: String,
    made: Mutex<HashMap<&'static str, Target>>,
    serial: Mutex<u32>,
}

const BYTES: &[u8] = b"ticket bytes";

impl World {
    async fn new() -> World {
        let app = spawn_local_storage_app_with(|c| {
            // Pending posts and files pile up here; the upload limits are not under test.
            c.tiers.basic.max_concurrent_uploads = 10_000;
        })
        .await;
        let (owner_id, owner) = user(&app, "owner").await;
        let (_, other) = user(&app, "other").await;
        let (_, admin) = user(&app, "root").await;
        let (_, third) = user(&app, "third").await;
        let (ghost_id, ghost) = user(&app, "ghost").await;
        app.make_admin("root").await;
        let resp = app
            .delete_json("/v1/users/me", Some(&ghost), &json!({"password": PASSWORD}))
            .await;
        expect_status(resp, StatusCode::NO_CONTENT).await;
        World {
            app,
            owner,
            other,
            admin,
            third,
            owner_id,
            ghost_id,
            made: Mutex::new(HashMap::new()),
            serial: Mutex::new(0),
        }
    }

    async fn next(&self) -> u32 {
        let mut n = self.serial.lock().await;
        *n += 1;
        *n
    }

    /// The state's shared resource, made on first use, or a new one for a row that uses it up.
    async fn target(&self, state: &'static str, fresh: bool) -> Target {
        if !fresh {
            if let Some(t) = self.made.lock().await.get(state) {
                return t.clone();
            }
        }
        let target = self.make(state).await;
        if !fresh {
            self.made.lock().await.insert(state, target.clone());
        }
        target
    }

    async fn make(&self, state: &'static str) -> Target {
        let app = &self.app;
        let owner = self.owner.as_str();
        match state {
            "-" | "account:wrong-password" => Target::default(),
            "user:owner" => Target::id(self.owner_id.clone()),
            "user:deleted" => Target::id(self.ghost_id.clone()),
            "account:throwaway" => {
                let n = self.next().await;
                let (_, token) = user(app, &format!("leaver{n}")).await;
                Target {
                    owner_token: Some(token),
                    ..Target::default()
                }
            }
            "refresh:owner" => {
                let body = expect_status(app.login("owner", PASSWORD).await, StatusCode::OK).await;
                Target::id(session_parts(body).2)
            }
            "refresh:bogus" => Target::id("not-a-refresh-token".into()),
            "post:published" => Target::id(id_of(&app.create_post(owner, "published").await)),
            "post:pending" => Target::id(id_of(&self.pending_post().await.0)),
            "post:failed" => {
                let (post, ticket) = self.pending_post().await;
                let resp = put_ticket(app, &ticket, b"plain text, not a JPEG".to_vec()).await;
                assert_problem(resp, 422, "content_mismatch").await;
                let id = id_of(&post);
                let mut waited = 0;
                loop {
                    let now = app.get_post(&id, Some(owner)).await;
                    if now["status"] != "pending" {
                        assert_eq!(now["status"], "failed", "{now}");
                        break;
                    }
                    waited += 1;
                    assert!(waited < 300, "post {id} stays pending");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Target::id(id)
            }
            "post:deleted" => {
                let id = id_of(&app.create_post(owner, "deleted").await);
                let resp = app.delete(&format!("/v1/posts/{id}"), Some(owner)).await;
                expect_status(resp, StatusCode::NO_CONTENT).await;
                Target::id(id)
            }
            "comment:own-on-own-post" => {
                let post = Box::pin(self.target("post:published", false)).await;
                self.comment(owner, &post.value).await
            }
            "comment:third-on-own-post" => {
                let post = Box::pin(self.target("post:published", false)).await;
                self.comment(&self.third, &post.value).await
            }
            "comment:own-on-others-post" => {
                let post = id_of(&app.create_post(&self.other, "other's").await);
                self.comment(owner, &post).await
            }
            "comment:own-on-own-pending-post" => {
                let post = Box::pin(self.target("post:pending", false)).await;
                self.comment(owner, &post.value).await
            }
            "comment:deleted" => {
                let post = Box::pin(self.target("post:published", false)).await;
                let comment = self.comment(owner, &post.value).await;
                let resp = app
                    .delete(&format!("/v1/comments/{}", comment.value), Some(owner))
                    .await;
                expect_status(resp, StatusCode::NO_CONTENT).await;
                comment
            }
            "file:pending-private" | "file:pending-public" => {
                let visibility = state.trim_start_matches("file:pending-");
                let mut body = file_request("p.txt", "text/plain", 10);
                body["visibility"] = json!(visibility);
                Target::id(id_of(&create_file(app, owner, &body).await.0))
            }
            "file:uploading" => {
                let metadata =
                    tus_metadata(&[("filename", "u.txt"), ("content_type", "text/plain")]);
                let (url, id) = tus_create(app, owner, 10, &metadata).await;
                let resp = tus_patch(app, &url, owner, 0, b"0123").await;
                assert_eq!(resp.status(), StatusCode::NO_CONTENT, "tus PATCH");
                assert_eq!(file_of(app, Some(owner), &id).await["status"], "uploading");
                Target::id(id)
            }
            "file:ready-private" => Target::id(id_of(&self.ready_file("private").await)),
            "file:ready-public" => Target::id(id_of(&self.ready_file("public").await)),
            "file:failed-public" => {
                let mut body = file_request("f.txt", "text/plain", BYTES.len());
                body["visibility"] = json!("public");
                body["sha256"] = json!(sha256_hex(b"other bytes!"));
                let (file, ticket) = create_file(app, owner, &body).await;
                let resp = put_ticket(app, &ticket, BYTES.to_vec()).await;
                assert_problem(resp, 422, "checksum_mismatch").await;
                Target::id(id_of(&file))
            }
            "file:deleted" => {
                let file = self.ready_file("public").await;
                self.delete_file(&id_of(&file)).await;
                Target::id(id_of(&file))
            }
            "file:in-post" => {
                let (post, _) = self.pending_post().await;
                Target::id(
                    post["media"][0]["file_id"]
                        .as_str()
                        .expect("file_id")
                        .into(),
                )
            }
            "signed:private" | "signed:tampered" | "signed:deleted" | "signed:tampered-deleted" => {
                let file = self.ready_file("private").await;
                let url = file["url"].as_str().expect("a ready file's url").to_owned();
                if state.ends_with("deleted") {
                    self.delete_file(&id_of(&file)).await;
                }
                let url = if state.contains("tampered") {
                    tamper_sig(&url)
                } else {
                    url
                };
                Target {
                    value: id_of(&file),
                    query: Some(url.split_once('?').expect("a query").1.to_owned()),
                    ..Target::default()
                }
            }
            "ticket:open"
            | "ticket:done"
            | "ticket:tampered"
            | "ticket:unsigned"
            | "ticket:tampered-deleted" => {
                let body = file_request("t.txt", "text/plain", BYTES.len());
                let (file, ticket) = create_file(app, owner, &body).await;
                if state == "ticket:done" {
                    expect_status(
                        put_ticket(app, &ticket, BYTES.to_vec()).await,
                        StatusCode::OK,
                    )
                    .await;
                }
                if state == "ticket:tampered-deleted" {
                    self.delete_file(&id_of(&file)).await;
                }
                let url = ticket["url"].as_str().expect("ticket url");
                let url = if state.contains("tampered") {
                    tamper_sig(url)
                } else {
                    url.to_owned()
                };
                let query = url.split_once('?').expect("a query").1.to_owned();
                Target {
                    value: id_of(&file),
                    query: (state != "ticket:unsigned").then_some(query),
                    upload: Some((BYTES.to_vec(), "text/plain".into())),
                    owner_token: None,
                }
            }
            other => panic!("no fixture for state {other}"),
        }
    }

    /// A post of the owner with one declared, never uploaded JPEG: `pending`.
    async fn pending_post(&self) -> (Value, Value) {
        let resp = self
            .app
            .post_json(
                "/v1/posts",
                Some(&self.owner),
                &json!({
                    "caption": "pending",
                    "media": [{"filename": "p.jpg", "content_type": "image/jpeg", "size": 22}],
                }),
            )
            .await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        assert_eq!(body["post"]["status"], "pending", "{body}");
        (body["post"].clone(), body["uploads"][0].clone())
    }

    async fn comment(&self, token: &str, post: &str) -> Target {
        Target::id(id_of(&self.app.create_comment(token, post, "hi").await))
    }

    async fn ready_file(&self, visibility: &str) -> Value {
        let mut body = file_request("r.txt", "text/plain", BYTES.len());
        body["visibility"] = json!(visibility);
        upload_with(&self.app, &self.owner, body, BYTES).await
    }

    async fn delete_file(&self, id: &str) {
        let resp = self
            .app
            .delete(&format!("/v1/files/{id}"), Some(&self.owner))
            .await;
        expect_status(resp, StatusCode::NO_CONTENT).await;
    }

    /// Sends the row's request; returns `(status, problem code)`.
    async fn send(&self, row: &Row) -> (u16, Option<String>) {
        // A row that uses its resource up gets one of its own.
        let fresh = (row.method == "DELETE" && row.caller != Anonymous)
            || (row.method == "PATCH" && row.path.starts_with("/v1/tus"))
            || matches!(
                row.state,
                "ticket:open" | "refresh:owner" | "account:throwaway"
            );
        let target = self.target(row.state, fresh).await;
        let token = match row.caller {
            Owner => Some(target.owner_token.clone().unwrap_or(self.owner.clone())),
            Other => Some(self.other.clone()),
            Admin => Some(self.admin.clone()),
            Anonymous => None,
        };
        let mut path = row.path.replace("{id}", &target.value).replace(
            "{username}",
            if row.state == "user:deleted" {
                "ghost"
            } else {
                "owner"
            },
        );
        if let Some(q) = &target.query {
            path = format!("{path}?{q}");
        }
        let method = Method::from_bytes(row.method.as_bytes()).expect("method");
        let mut req = self.app.authed(method, &path, token.as_deref());
        if row.path.starts_with("/v1/tus") {
            req = req.header("Tus-Resumable", TUS);
        }
        let n = self.next().await;
        req = match (row.method, row.path) {
            ("POST", "/v1/auth/register") => {
                req.json(&json!({"username": format!("newcomer{n}"), "password": PASSWORD}))
            }
            ("POST", "/v1/auth/login") => {
                req.json(&json!({"username": "owner", "password": PASSWORD}))
            }
            ("POST", "/v1/auth/refresh" | "/v1/auth/logout") => {
                req.json(&json!({"refresh_token": target.value}))
            }
            ("PATCH", "/v1/users/me") => req.json(&json!({"bio": "hello"})),
            ("DELETE", "/v1/users/me") => {
                let password = if row.state == "account:wrong-password" {
                    "not the password"
                } else {
                    PASSWORD
                };
                req.json(&json!({"password": password}))
            }
            ("PATCH", "/v1/admin/users/{id}") => req.json(&json!({"tier": "basic"})),
            ("POST", "/v1/posts") => req.json(&json!({"caption": "a post"})),
            ("PATCH", "/v1/posts/{id}") => req.json(&json!({"caption": "edited"})),
            ("POST", "/v1/posts/{id}/comments") => req.json(&json!({"text": "a comment"})),
            ("POST", "/v1/files") => req.json(&file_request("n.txt", "text/plain", 3)),
            ("PATCH", "/v1/files/{id}") => req.json(&json!({"tags": ["matrix"]})),
            ("POST", "/v1/files/{id}/complete") => req.json(&json!({})),
            ("PUT", "/v1/files/{id}/content") => {
                let (bytes, content_type) = target.upload.clone().expect("upload bytes");
                req.header("Content-Type", content_type).body(bytes)
            }
            ("POST", "/v1/tus") => req
                .header("Upload-Length", "3")
                .header("Upload-Metadata", tus_metadata(&[("filename", "t.txt")])),
            ("PATCH", "/v1/tus/{id}") => req
                .header("Upload-Offset", "4")
                .header("Content-Type", "application/offset+octet-stream")
                .body(b"4".to_vec()),
            _ => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        // Successful answers may be streams (`/v1/events`): only errors are read.
        if status < 400 || row.method == "HEAD" {
            return (status, None);
        }
        let text = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|b| b["code"].as_str().map(str::to_owned));
        (
            status,
            code.or(Some(format!("(not a problem: {text:.100})"))),
        )
    }
}

impl World {
    /// Lists never show anyone else what a `GET` of the item would hide: the owner's pending
    /// and failed posts, and the owner's files. Returns what leaked.
    async fn lists_leaking(&self) -> Vec<String> {
        let owner_posts = format!("/v1/users/{}/posts", self.owner_id);
        let mut leaks = Vec::new();
        for (caller, token) in [
            (Other, Some(self.other.as_str())),
            (Anonymous, None),
            (Admin, Some(self.admin.as_str())),
        ] {
            for path in [owner_posts.as_str(), "/v1/explore"] {
                for post in self.app.collect_pages(path, token, 100).await {
                    if post["status"] != "published" {
                        leaks.push(format!("GET {path} as {caller:?} lists {post}"));
                    }
                }
            }
            if let Some(token) = token {
                for file in self.app.collect_pages("/v1/files", Some(token), 100).await {
                    if file["owner_id"] == self.owner_id.as_str() {
                        leaks.push(format!("GET /v1/files as {caller:?} lists {file}"));
                    }
                }
            }
        }
        // The owner's own list does show them (so the check above is not vacuous).
        let own = self
            .app
            .collect_pages(&owner_posts, Some(&self.owner), 100)
            .await;
        for status in ["pending", "failed", "published"] {
            if !own.iter().any(|p| p["status"] == status) {
                leaks.push(format!("GET {owner_posts} as Owner lists no {status} post"));
            }
        }
        leaks
    }
}

/// `(METHOD, path)` of every operation the OpenAPI document lists, with the statuses it
/// documents for it.
async fn documented_operations(app: &TestApp) -> BTreeMap<(String, String), BTreeSet<String>> {
    let doc = expect_status(app.get("/openapi.json", None).await, StatusCode::OK).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut ops = BTreeMap::new();
    for (path, item) in paths {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if let Some(op) = item.get(method) {
                let statuses = op["responses"]
                    .as_object()
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default();
                ops.insert((method.to_uppercase(), path.clone()), statuses);
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_operation_answers_each_caller_as_spec_says() {
    let world = World::new().await;
    let table = matrix();

    let documented = documented_operations(&world.app).await;
    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let operations: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    let without_rows: Vec<_> = operations.difference(&covered).collect();
    assert!(
        without_rows.is_empty(),
        "operations in /openapi.json without a row in the authorization matrix: {without_rows:?}"
    );
    let undocumented: Vec<_> = covered.difference(&operations).collect();
    assert!(
        undocumented.is_empty(),
        "rows for operations /openapi.json does not list: {undocumented:?}"
    );

    let mut mismatches = Vec::new();
    let mut fixed = Vec::new();
    for row in &table {
        let (status, code) = world.send(row).await;
        // Whatever the answer, the document must list it for the operation.
        let listed = &documented[&(row.method.to_owned(), row.path.to_owned())];
        if !listed.contains(&status.to_string()) {
            mismatches.push(format!(
                "{} {} as {:?} on {}: answered {status}, which /openapi.json does not document ({listed:?})",
                row.method, row.path, row.caller, row.state
            ));
        }
        let code_ok = row.code.is_none() || row.method == "HEAD" || code.as_deref() == row.code;
        let ok = status == row.status && code_ok;
        let known = known_failure(row);
        if !ok && known.is_none() {
            mismatches.push(format!(
                "{} {} as {:?} on {}: expected {} {}, got {} {}",
                row.method,
                row.path,
                row.caller,
                row.state,
                row.status,
                row.code.unwrap_or(""),
                status,
                code.unwrap_or_default()
            ));
        }
        if let (true, Some(why)) = (ok, known) {
            fixed.push(format!(
                "{} {} as {:?} on {} ({why})",
                row.method, row.path, row.caller, row.state
            ));
        }
    }
    mismatches.extend(world.lists_leaking().await);
    assert!(
        mismatches.is_empty(),
        "{} of {} rows differ from SPEC:\n{}",
        mismatches.len(),
        table.len(),
        mismatches.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "known failures that now pass (remove them from KNOWN_FAILURES): {fixed:?}"
    );
}
