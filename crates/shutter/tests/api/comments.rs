//! Comments: create, list oldest first, preview of the 3 newest, delete rights, exact counts.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn create_a_comment() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (commenter, commenter_token, _) = app.register("commenter").await;
    let post = app.create_post(&author, "comment on me").await;
    let post_id = id_of(&post);
    let resp = app
        .post_json(
            &format!("/v1/posts/{post_id}/comments"),
            Some(&commenter_token),
            &json!({"text": "Nice shot!"}),
        )
        .await;
    let comment = expect_status(resp, StatusCode::CREATED).await;
    assert_uuid_v7(&comment["id"]);
    assert_eq!(comment["post_id"], post_id.as_str());
    assert_eq!(comment["text"], "Nice shot!");
    assert_summary_of(&comment["author"], &commenter);
    assert_timestamp(&comment["created_at"]);
    assert_timestamp(&comment["updated_at"]);

    let post = app.get_post(&post_id, None).await;
    assert_eq!(post["comment_count"], 1);
    assert_eq!(post["comments_preview"], json!([comment]));
}

#[tokio::test]
async fn comment_text_must_be_1_to_2200_characters() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("talker").await;
    let post = app.create_post(&token, "post").await;
    let path = format!("/v1/posts/{}/comments", id_of(&post));
    for bad in [json!(""), json!(" \n "), json!("t".repeat(2201)), json!(7)] {
        let resp = app
            .post_json(&path, Some(&token), &json!({"text": bad}))
            .await;
        assert_invalid_field(resp, "text").await;
    }
    let resp = app.post_json(&path, Some(&token), &json!({})).await;
    assert_invalid_field(resp, "text").await;
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 0);
    app.create_comment(&token, &id_of(&post), &"t".repeat(2200))
        .await;
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 1);
}

#[tokio::test]
async fn comments_on_a_missing_post_are_not_found() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("lost").await;
    let ghost = uuid::Uuid::now_v7();
    let resp = app
        .post_json(
            &format!("/v1/posts/{ghost}/comments"),
            Some(&token),
            &json!({"text": "hello?"}),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;
    assert_problem(
        app.get(&format!("/v1/posts/{ghost}/comments"), None).await,
        404,
        "not_found",
    )
    .await;
    let resp = app
        .post_json(
            "/v1/posts/xyz/comments",
            Some(&token),
            &json!({"text": "hello?"}),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn comments_are_listed_oldest_first_and_previewed_newest_first() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, reader, _) = app.register("reader").await;
    let post = app.create_post(&author, "busy post").await;
    let post_id = id_of(&post);
    let mut created = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { &author } else { &reader };
        created.push(
            app.create_comment(who, &post_id, &format!("comment {i}"))
                .await,
        );
    }

    let page = expect_status(
        app.get(&format!("/v1/posts/{post_id}/comments"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(page["next_cursor"].is_null());
    assert_eq!(page["items"], json!(created), "oldest first, same objects");

    let post = app.get_post(&post_id, Some(&reader)).await;
    assert_eq!(post["comment_count"], 5);
    let preview: Vec<Value> = created.iter().rev().take(3).cloned().collect();
    assert_eq!(
        post["comments_preview"],
        json!(preview),
        "3 newest, newest first"
    );

    // The preview is in the lists of posts too.
    let posts = expect_status(
        app.get(
            &format!("/v1/users/{}/posts", post["author"]["id"].as_str().unwrap()),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(posts["items"][0]["comments_preview"], json!(preview));
    assert_eq!(posts["items"][0]["comment_count"], 5);
}

#[tokio::test]
async fn the_comment_author_deletes_a_comment_and_the_count_follows() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, commenter, _) = app.register("commenter").await;
    let post = app.create_post(&author, "post").await;
    let post_id = id_of(&post);
    let first = app.create_comment(&commenter, &post_id, "first").await;
    let second = app.create_comment(&commenter, &post_id, "second").await;

    let resp = app
        .delete(
            &format!("/v1/comments/{}", id_of(&second)),
            Some(&commenter),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let post = app.get_post(&post_id, None).await;
    assert_eq!(post["comment_count"], 1);
    assert_eq!(post["comments_preview"], json!([first]));
    let page = expect_status(
        app.get(&format!("/v1/posts/{post_id}/comments"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["items"], json!([first]));

    // Deleting it again: it is gone.
    let resp = app
        .delete(
            &format!("/v1/comments/{}", id_of(&second)),
            Some(&commenter),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn the_post_author_deletes_any_comment_on_the_post() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, troll, _) = app.register("troll").await;
    let post = app.create_post(&author, "post").await;
    let comment = app.create_comment(&troll, &id_of(&post), "spam").await;
    let resp = app
        .delete(&format!("/v1/comments/{}", id_of(&comment)), Some(&author))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 0);
}

#[tokio::test]
async fn an_admin_deletes_a_comment_on_a_post_only_its_author_can_see() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, bystander, _) = app.register("bystander").await;
    let (_, root, _) = app.register("root").await;
    app.make_admin("root").await;
    // A post with a photo that never arrives stays pending: only its author sees it.
    let resp = app
        .post_json(
            "/v1/posts",
            Some(&author),
            &json!({
                "caption": "pending",
                "media": [{"filename": "p.jpg", "content_type": "image/jpeg", "size": 100}],
            }),
        )
        .await;
    let post = expect_status(resp, StatusCode::CREATED).await["post"].clone();
    assert_eq!(post["status"], "pending");
    let comment = app.create_comment(&author, &id_of(&post), "note").await;
    let path = format!("/v1/comments/{}", id_of(&comment));

    // Someone else learns nothing about it.
    assert_problem(app.delete(&path, Some(&bystander)).await, 404, "not_found").await;
    // An admin may delete any comment.
    let resp = app.delete(&path, Some(&root)).await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(
        app.get_post(&id_of(&post), Some(&author)).await["comment_count"],
        0
    );
    assert_problem(app.delete(&path, Some(&root)).await, 404, "not_found").await;
}

#[tokio::test]
async fn others_may_not_delete_a_comment() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let (_, commenter, _) = app.register("commenter").await;
    let (_, bystander, _) = app.register("bystander").await;
    let post = app.create_post(&author, "post").await;
    let comment = app.create_comment(&commenter, &id_of(&post), "mine").await;

    let resp = app
        .delete(
            &format!("/v1/comments/{}", id_of(&comment)),
            Some(&bystander),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    assert_eq!(app.get_post(&id_of(&post), None).await["comment_count"], 1);
}

#[tokio::test]
async fn deleting_a_missing_comment_is_not_found() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("nobody").await;
    let ghost = uuid::Uuid::now_v7();
    assert_problem(
        app.delete(&format!("/v1/comments/{ghost}"), Some(&token))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.delete("/v1/comments/123", Some(&token)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn comment_counts_stay_exact_under_concurrent_comments() {
    let app = spawn_app().await;
    let (_, author, _) = app.register("author").await;
    let post = app.create_post(&author, "popular").await;
    let post_id = id_of(&post);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/posts/{post_id}/comments"));
        let token = author.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"text": format!("c{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let post = app.get_post(&post_id, None).await;
    assert_eq!(post["comment_count"], 12);
    let all = app
        .collect_pages(&format!("/v1/posts/{post_id}/comments"), None, 5)
        .await;
    assert_eq!(all.len(), 12);
}

#[tokio::test]
async fn the_preview_refills_when_a_previewed_comment_is_deleted() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("previewer").await;
    let post = app.create_post(&token, "post").await;
    let post_id = id_of(&post);
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_comment(&token, &post_id, &format!("c{i}")).await);
    }
    // Delete the newest and one in the middle of the preview.
    for gone in [&created[4], &created[3]] {
        let resp = app
            .delete(&format!("/v1/comments/{}", id_of(gone)), Some(&token))
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let post = app.get_post(&post_id, None).await;
    assert_eq!(post["comment_count"], 3);
    assert_eq!(
        post["comments_preview"],
        json!([created[2], created[1], created[0]])
    );
}
