//! A post read, then changed, then read again shows the change at once, wherever it is read
//! (`GET /v1/posts/{id}`, the home feed, explore, the author's posts): on the embedded
//! database a node keeps published posts in memory between reads, and every change must
//! reach those copies (SPEC 3: counts other than `like_count` are exact at once,
//! `like_count` within 1 s, a deleted post gone within 2 s).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::social_helpers::*;

/// A reader who follows an author with one published text post, read everywhere once so
/// that every copy a node may keep exists.
struct Scene {
    app: TestApp,
    author: Member,
    reader: Member,
    post: String,
}

async fn scene() -> Scene {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let reader = member(&app, "reader").await;
    follow(&app, &reader, &author).await;
    let post = id_of(&app.create_post(&author.token, "first caption").await);
    let s = Scene {
        app,
        author,
        reader,
        post,
    };
    assert_feed(&s.app, &s.reader, 20, std::slice::from_ref(&s.post)).await;
    s.everywhere().await;
    s
}

impl Scene {
    /// The post as each read shows it to the reader (the post, the home feed, explore, the
    /// author's posts), after checking that all four agree.
    async fn everywhere(&self) -> Value {
        let token = Some(self.reader.token.as_str());
        let post = self.app.get_post(&self.post, token).await;
        let in_list = |page: Value| {
            page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|p| p["id"] == post["id"]).cloned())
                .unwrap_or(Value::Null)
        };
        let feed =
            in_list(expect_status(self.app.get("/v1/feed", token).await, StatusCode::OK).await);
        let explore =
            in_list(expect_status(self.app.get("/v1/explore", token).await, StatusCode::OK).await);
        let by_author = in_list(
            expect_status(
                self.app
                    .get(&format!("/v1/users/{}/posts", self.author.id()), token)
                    .await,
                StatusCode::OK,
            )
            .await,
        );
        for (name, other) in [
            ("feed", &feed),
            ("explore", &explore),
            ("posts", &by_author),
        ] {
            assert_eq!(other, &post, "{name} against the post itself");
        }
        post
    }

    async fn comment(&self, token: &str, text: &str) -> String {
        let resp = self
            .app
            .post_json(
                &format!("/v1/posts/{}/comments", self.post),
                Some(token),
                &json!({ "text": text }),
            )
            .await;
        id_of(&expect_status(resp, StatusCode::CREATED).await)
    }
}

/// The scene's post as the reader's home feed shows it.
async fn feed_item(s: &Scene) -> Value {
    let page = expect_status(
        s.app.get("/v1/feed", Some(&s.reader.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        page["items"][0]["id"].as_str(),
        Some(s.post.as_str()),
        "{page}"
    );
    page["items"][0].clone()
}

#[tokio::test]
async fn an_edited_caption_shows_at_once() {
    let s = scene().await;
    let resp = s
        .app
        .patch_json(
            &format!("/v1/posts/{}", s.post),
            Some(&s.author.token),
            &json!({"caption": "second caption"}),
        )
        .await;
    let edited = expect_status(resp, StatusCode::OK).await;
    let seen = s.everywhere().await;
    assert_eq!(seen["caption"], "second caption");
    assert_eq!(seen["updated_at"], edited["updated_at"]);
}

#[tokio::test]
async fn comments_count_and_preview_at_once() {
    let s = scene().await;
    let first = s.comment(&s.reader.token, "nice").await;
    let seen = s.everywhere().await;
    assert_eq!(seen["comment_count"], 1);
    assert_eq!(seen["comments_preview"][0]["text"], "nice");

    s.comment(&s.author.token, "thanks").await;
    assert_eq!(s.everywhere().await["comment_count"], 2);

    let resp = s
        .app
        .delete(&format!("/v1/comments/{first}"), Some(&s.reader.token))
        .await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
    let seen = s.everywhere().await;
    assert_eq!(seen["comment_count"], 1);
    assert_eq!(seen["comments_preview"][0]["text"], "thanks");
}

#[tokio::test]
async fn likes_show_for_the_liker_at_once_and_in_the_count_soon() {
    let s = scene().await;
    like(&s.app, &s.reader.token, &s.post).await;
    // At once for the liker (the count may still be the old one: compared once settled).
    assert_eq!(
        s.app.get_post(&s.post, Some(&s.reader.token)).await["liked_by_me"],
        true
    );
    assert_eq!(feed_item(&s).await["liked_by_me"], true);
    // Another viewer's copy of the same post does not carry the reader's like.
    assert_eq!(
        s.app.get_post(&s.post, Some(&s.author.token)).await["liked_by_me"],
        false
    );
    assert_eq!(s.app.get_post(&s.post, None).await["liked_by_me"], false);
    let counted = wait_like_count(&s.app, &s.post, Some(&s.reader.token), 1).await;
    assert_eq!(counted["like_count"], 1, "{counted}");
    let seen = s.everywhere().await;
    assert_eq!(
        (&seen["like_count"], &seen["liked_by_me"]),
        (&json!(1), &json!(true))
    );

    unlike(&s.app, &s.reader.token, &s.post).await;
    assert_eq!(
        s.app.get_post(&s.post, Some(&s.reader.token)).await["liked_by_me"],
        false
    );
    assert_eq!(feed_item(&s).await["liked_by_me"], false);
    let counted = wait_like_count(&s.app, &s.post, Some(&s.reader.token), 0).await;
    assert_eq!(counted["like_count"], 0, "{counted}");
    let seen = s.everywhere().await;
    assert_eq!(
        (&seen["like_count"], &seen["liked_by_me"]),
        (&json!(0), &json!(false))
    );
}

#[tokio::test]
async fn a_renamed_author_shows_at_once_on_posts_and_comments() {
    let s = scene().await;
    s.comment(&s.author.token, "my own comment").await;
    s.everywhere().await;
    let resp = s
        .app
        .patch_json(
            "/v1/users/me",
            Some(&s.author.token),
            &json!({"display_name": "Renamed Author"}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
    let seen = s.everywhere().await;
    assert_eq!(seen["author"]["display_name"], "Renamed Author");
    assert_eq!(
        seen["comments_preview"][0]["author"]["display_name"],
        "Renamed Author"
    );
}

#[tokio::test]
async fn a_deleted_post_is_gone_at_once() {
    let s = scene().await;
    delete_post(&s.app, &s.author.token, &s.post).await;
    for token in [Some(s.reader.token.as_str()), None] {
        assert_problem(
            s.app.get(&format!("/v1/posts/{}", s.post), token).await,
            404,
            "not_found",
        )
        .await;
    }
    // Read once each, not polled: gone at once, wherever it was listed.
    let token = Some(s.reader.token.as_str());
    for path in [
        "/v1/feed".to_owned(),
        "/v1/explore".to_owned(),
        format!("/v1/users/{}/posts", s.author.id()),
    ] {
        let page = expect_status(s.app.get(&path, token).await, StatusCode::OK).await;
        assert_eq!(page["items"], json!([]), "{path}: {page}");
    }
}

/// A deleted account's comments and likes leave the counts of other people's posts.
#[tokio::test]
async fn a_deleted_commenters_comment_leaves_the_count_at_once() {
    let s = scene().await;
    let passer = member(&s.app, "passer").await;
    s.comment(&passer.token, "drive-by").await;
    like(&s.app, &passer.token, &s.post).await;
    wait_like_count(&s.app, &s.post, None, 1).await;
    let seen = s.everywhere().await;
    assert_eq!(
        (seen["comment_count"].clone(), seen["like_count"].clone()),
        (json!(1), json!(1))
    );

    delete_account(&s.app, &passer.token).await;
    let seen = s.everywhere().await;
    assert_eq!(seen["comment_count"], 0);
    assert_eq!(seen["comments_preview"], json!([]));
    let counted = wait_like_count(&s.app, &s.post, None, 0).await;
    assert_eq!(counted["like_count"], 0, "{counted}");
}

/// A photo post read again still carries its photo, with URLs that serve it.
#[tokio::test]
async fn a_photo_post_read_twice_keeps_its_photo() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let (post, ticket) = create_pending_post(&app, &author.token, "a photo").await;
    publish_pending_post(&app, &author.token, &post, &ticket).await;
    let id = id_of(&post);
    for _ in 0..2 {
        let seen = app.get_post(&id, Some(&author.token)).await;
        let media = seen["media"].as_array().expect("media");
        assert_eq!(media.len(), 1, "{seen}");
        let feed = expect_status(
            app.get("/v1/feed", Some(&author.token)).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            feed["items"][0]["media"].as_array().map(Vec::len),
            Some(1),
            "{feed}"
        );
        let url = media[0]["variants"]["thumb"]["url"]
            .as_str()
            .expect("thumb url")
            .to_owned();
        let resp = app.client.get(&url).send().await.expect("thumb");
        // On S3 a private photo's bytes come from the bucket, by redirect.
        let resp = crate::upload_helpers::follow_to_bucket(&app.client, resp).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(!resp.bytes().await.expect("thumb bytes").is_empty());
    }
}
