//! Text posts: create, read, edit, delete, and a user's posts (SPEC 3).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn assert_post_shape(post: &Value) {
    assert_uuid_v7(&post["id"]);
    for key in [
        "id",
        "author",
        "caption",
        "status",
        "media",
        "like_count",
        "comment_count",
        "liked_by_me",
        "comments_preview",
        "created_at",
        "updated_at",
    ] {
        assert!(post.get(key).is_some(), "Post has {key}: {post}");
    }
    assert_timestamp(&post["created_at"]);
    assert_timestamp(&post["updated_at"]);
}

#[tokio::test]
async fn create_a_text_post() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("poster").await;
    let resp = app
        .post_json(
            "/v1/posts",
            Some(&token),
            &json!({"caption": "Hello, world"}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["uploads"], json!([]), "no media, no uploads: {body}");
    let post = &body["post"];
    assert_post_shape(post);
    assert_eq!(post["caption"], "Hello, world");
    assert_eq!(
        post["status"], "published",
        "a post without media is published at once"
    );
    assert_eq!(post["media"], json!([]));
    assert_eq!(post["like_count"], 0);
    assert_eq!(post["comment_count"], 0);
    assert_eq!(post["liked_by_me"], false);
    assert_eq!(post["comments_preview"], json!([]));
    assert_summary_of(&post["author"], &user);
    assert_eq!(post["created_at"], post["updated_at"]);
}

#[tokio::test]
async fn get_a_post_with_and_without_auth() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("poster").await;
    let (_, reader_token, _) = app.register("reader").await;
    let post = app.create_post(&token, "Readable").await;
    let id = id_of(&post);
    let anonymous = app.get_post(&id, None).await;
    assert_eq!(anonymous, post, "GET shows what POST returned");
    let as_reader = app.get_post(&id, Some(&reader_token)).await;
    assert_eq!(as_reader["caption"], "Readable");
    assert_eq!(as_reader["liked_by_me"], false);
}

#[tokio::test]
async fn missing_or_malformed_post_ids_are_not_found() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("seeker").await;
    let ghost = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/posts/{ghost}"),
        "/v1/posts/not-a-uuid".to_owned(),
    ] {
        assert_problem(app.get(&path, None).await, 404, "not_found").await;
        let resp = app
            .patch_json(&path, Some(&token), &json!({"caption": "x"}))
            .await;
        assert_problem(resp, 404, "not_found").await;
        assert_problem(app.delete(&path, Some(&token)).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn caption_must_be_1_to_2200_characters_and_not_blank() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("captioner").await;
    let too_long = "c".repeat(2201);
    for bad in [
        json!(""),
        json!("   "),
        json!(too_long),
        json!(42),
        json!(null),
    ] {
        let resp = app
            .post_json("/v1/posts", Some(&token), &json!({"caption": bad}))
            .await;
        assert_invalid_field(resp, "caption").await;
    }
    let resp = app.post_json("/v1/posts", Some(&token), &json!({})).await;
    assert_invalid_field(resp, "caption").await;

    // Nothing was created by the refused requests.
    let profile = expect_status(
        app.get(&format!("/v1/users/{}", id_of(&user)), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["posts_count"], 0);

    // 2200 characters, counted as characters (each of these is 4 bytes in UTF-8).
    let longest = "📷".repeat(2200);
    let post = app.create_post(&token, &longest).await;
    assert_eq!(post["caption"], longest);
}

#[tokio::test]
async fn the_author_edits_the_caption_and_updated_at_moves() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("editor").await;
    let post = app.create_post(&token, "first draft").await;
    let id = id_of(&post);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let resp = app
        .patch_json(
            &format!("/v1/posts/{id}"),
            Some(&token),
            &json!({"caption": "final version"}),
        )
        .await;
    let edited = expect_status(resp, StatusCode::OK).await;
    assert_post_shape(&edited);
    assert_eq!(edited["caption"], "final version");
    assert_eq!(edited["created_at"], post["created_at"]);
    // Same fixed-width RFC 3339 format, so text order is time order.
    assert!(
        edited["updated_at"].as_str().unwrap() > post["updated_at"].as_str().unwrap(),
        "updated_at is newer: {} vs {}",
        edited["updated_at"],
        post["updated_at"]
    );
    assert_eq!(app.get_post(&id, None).await, edited);

    let resp = app
        .patch_json(
            &format!("/v1/posts/{id}"),
            Some(&token),
            &json!({"caption": ""}),
        )
        .await;
    assert_invalid_field(resp, "caption").await;
}

#[tokio::test]
async fn others_may_not_edit_or_delete_a_post() {
    let app = spawn_app().await;
    let (_, owner, _) = app.register("owner").await;
    let (_, intruder, _) = app.register("intruder").await;
    let post = app.create_post(&owner, "mine").await;
    let path = format!("/v1/posts/{}", id_of(&post));

    let resp = app
        .patch_json(&path, Some(&intruder), &json!({"caption": "yours now"}))
        .await;
    assert_problem(resp, 403, "forbidden").await;
    assert_problem(app.delete(&path, Some(&intruder)).await, 403, "forbidden").await;
    let now = app.get_post(&id_of(&post), None).await;
    assert_eq!(now["caption"], "mine");
    assert_eq!(now["updated_at"], post["updated_at"]);
}

#[tokio::test]
async fn the_author_deletes_a_post() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("deleter").await;
    let keep = app.create_post(&token, "keep").await;
    let post = app.create_post(&token, "delete me").await;
    let commenter = app.register("commenter").await.1;
    let comment = app.create_comment(&commenter, &id_of(&post), "bye").await;
    let path = format!("/v1/posts/{}", id_of(&post));

    let resp = app.delete(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.text().await.unwrap().is_empty());

    assert_problem(app.get(&path, Some(&token)).await, 404, "not_found").await;
    assert_problem(app.get(&path, None).await, 404, "not_found").await;
    assert_problem(app.delete(&path, Some(&token)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{path}/comments"), None).await,
        404,
        "not_found",
    )
    .await;
    // Its comments went with it.
    assert_problem(
        app.delete(
            &format!("/v1/comments/{}", id_of(&comment)),
            Some(&commenter),
        )
        .await,
        404,
        "not_found",
    )
    .await;

    let posts = app
        .collect_pages(&format!("/v1/users/{}/posts", id_of(&user)), None, 20)
        .await;
    let ids: Vec<&Value> = posts.iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, vec![&keep["id"]]);
}

#[tokio::test]
async fn a_users_posts_are_listed_newest_first() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("prolific").await;
    let (other, other_token, _) = app.register("other").await;
    let mut created = Vec::new();
    for i in 0..4 {
        created.push(app.create_post(&token, &format!("post {i}")).await);
        app.create_post(&other_token, &format!("noise {i}")).await;
    }
    let resp = app
        .get(&format!("/v1/users/{}/posts", id_of(&user)), None)
        .await;
    let page = expect_status(resp, StatusCode::OK).await;
    assert!(page["next_cursor"].is_null(), "{page}");
    let items = page["items"].as_array().unwrap();
    let captions: Vec<&str> = items
        .iter()
        .map(|p| p["caption"].as_str().unwrap())
        .collect();
    assert_eq!(captions, vec!["post 3", "post 2", "post 1", "post 0"]);
    for item in items {
        assert_post_shape(item);
        assert_summary_of(&item["author"], &user);
    }
    // The list shows the same posts as GET /v1/posts/{id}.
    assert_eq!(items[3], app.get_post(&id_of(&created[0]), None).await);

    let theirs = app
        .collect_pages(&format!("/v1/users/{}/posts", id_of(&other)), None, 20)
        .await;
    assert_eq!(theirs.len(), 4);
}

#[tokio::test]
async fn posts_of_an_unknown_user_are_not_found() {
    let app = spawn_app().await;
    let ghost = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/v1/users/{ghost}/posts"), None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/users/nope/posts", None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_user_without_posts_has_an_empty_list() {
    let app = spawn_app().await;
    let (user, _, _) = app.register("quiet").await;
    let page = expect_status(
        app.get(&format!("/v1/users/{}/posts", id_of(&user)), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn a_bad_token_on_an_auth_optional_endpoint_is_refused_not_ignored() {
    // GET /v1/posts/{id} works without a token, but a token that is sent must be valid:
    // silently treating a broken or expired token as anonymous would hide the problem.
    let app = spawn_app().await;
    let (user, token, _) = app.register("optional").await;
    let post = app.create_post(&token, "public").await;
    let path = format!("/v1/posts/{}", id_of(&post));
    assert_problem(
        app.get(&path, Some("garbage")).await,
        401,
        "unauthenticated",
    )
    .await;
    let mut claims = app.claims_for(user["id"].as_str().unwrap());
    claims["iat"] = json!(unix_now() - 1000);
    claims["exp"] = json!(unix_now() - 60);
    let expired = app.forge_token(&claims);
    assert_problem(app.get(&path, Some(&expired)).await, 401, "token_expired").await;
}

#[tokio::test]
async fn the_author_summary_shows_the_current_profile() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("renamer").await;
    let post = app.create_post(&token, "before the rename").await;
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&token),
            &json!({"display_name": "New Name"}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
    let post = app.get_post(&id_of(&post), None).await;
    assert_eq!(post["author"]["display_name"], "New Name");
}
