//! Likes (SPEC 3): like/unlike are idempotent 204s, `liked_by_me` is exact at once for the
//! liker, `like_count` may lag but is exact within a second (polled here, never timed), and
//! the likers of a post are pages of UserSummary, newest like first.

use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::social_helpers::*;

#[tokio::test]
async fn like_and_unlike_are_idempotent() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let fan = member(&app, "fan").await;
    let post = id_of(&app.create_post(&author.token, "likeable").await);

    like(&app, &fan.token, &post).await;
    like(&app, &fan.token, &post).await;
    // liked_by_me is exact at once for the liker, and only for the liker.
    assert_eq!(
        app.get_post(&post, Some(&fan.token)).await["liked_by_me"],
        true
    );
    assert_eq!(
        app.get_post(&post, Some(&author.token)).await["liked_by_me"],
        false
    );
    assert_eq!(app.get_post(&post, None).await["liked_by_me"], false);
    let seen = wait_like_count(&app, &post, None, 1).await;
    assert_eq!(seen["like_count"], 1, "two PUTs are one like: {seen}");
    assert_eq!(likers_ids(&app, &post, 20).await, [fan.id()]);

    unlike(&app, &fan.token, &post).await;
    unlike(&app, &fan.token, &post).await;
    assert_eq!(
        app.get_post(&post, Some(&fan.token)).await["liked_by_me"],
        false
    );
    let seen = wait_like_count(&app, &post, Some(&fan.token), 0).await;
    assert_eq!(seen["like_count"], 0, "{seen}");
    assert!(likers_ids(&app, &post, 20).await.is_empty());

    // Unliking what was never liked: 204, nothing changes.
    unlike(&app, &author.token, &post).await;
    // And liking again counts again.
    like(&app, &fan.token, &post).await;
    like(&app, &author.token, &post).await;
    assert_eq!(
        app.get_post(&post, Some(&author.token)).await["liked_by_me"],
        true
    );
    let seen = wait_like_count(&app, &post, None, 2).await;
    assert_eq!(seen["like_count"], 2, "{seen}");
}

#[tokio::test]
async fn thirty_concurrent_likes_are_counted_exactly() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let post = id_of(&app.create_post(&author.token, "viral").await);
    let fans = members(&app, "fan", 30).await;

    let mut tasks = Vec::new();
    for fan in &fans {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/posts/{post}/like"));
        let token = fan.token.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .put(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("PUT like");
            resp.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::NO_CONTENT);
    }
    let seen = wait_like_count(&app, &post, None, 30).await;
    assert_eq!(seen["like_count"], 30, "{seen}");
    // Still 30 a moment later (no double counting by a later flush).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.get_post(&post, None).await["like_count"], 30);

    let likers = likers_ids(&app, &post, 7).await;
    assert_unique(&likers, "likers");
    let mut got = likers.clone();
    got.sort();
    let mut expected: Vec<String> = fans.iter().map(Member::id).collect();
    expected.sort();
    assert_eq!(got, expected, "every liker once");
    for fan in fans.iter().step_by(7) {
        assert_eq!(
            app.get_post(&post, Some(&fan.token)).await["liked_by_me"],
            true
        );
    }

    // Ten of them unlike, concurrently too.
    let mut tasks = Vec::new();
    for fan in &fans[..10] {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/posts/{post}/like"));
        let token = fan.token.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("DELETE like");
            resp.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::NO_CONTENT);
    }
    let seen = wait_like_count(&app, &post, None, 20).await;
    assert_eq!(seen["like_count"], 20, "{seen}");
    assert_eq!(likers_ids(&app, &post, 100).await.len(), 20);
    assert_eq!(
        app.get_post(&post, Some(&fans[0].token)).await["liked_by_me"],
        false
    );
}

#[tokio::test]
async fn likers_are_pages_newest_like_first() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let post = id_of(&app.create_post(&author.token, "p").await);
    let fans = members(&app, "fan", 5).await;
    for fan in &fans {
        like(&app, &fan.token, &post).await;
        distinct_ms().await;
    }
    let expected: Vec<String> = fans.iter().rev().map(Member::id).collect();
    for limit in [1, 2, 3, 5, 20] {
        assert_eq!(
            likers_ids(&app, &post, limit).await,
            expected,
            "likers newest first, pages of {limit}"
        );
    }
    let page = expect_status(
        app.get(&format!("/v1/posts/{post}/likes?limit=1"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_summary_of(&page["items"][0], &fans[4].user);

    let list = format!("/v1/posts/{post}/likes");
    for bad in ["0", "101", "abc"] {
        let resp = app.get(&format!("{list}?limit={bad}"), None).await;
        assert_invalid_field(resp, "limit").await;
    }
    for bad in ["garbage!!", "bm90LWEtY3Vyc29y", "MTIzNA"] {
        let resp = app.get(&format!("{list}?cursor={bad}"), None).await;
        assert_problem(resp, 400, "invalid_cursor").await;
    }
}

#[tokio::test]
async fn posts_you_cannot_see_cannot_be_liked() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let other = member(&app, "other").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    // A pending photo post is not visible to others: 404, as if it did not exist.
    let (pending, _ticket) = create_pending_post(&app, &author.token, "soon").await;
    let pending = id_of(&pending);
    let deleted = id_of(&app.create_post(&author.token, "gone").await);
    delete_post(&app, &author.token, &deleted).await;
    for post in [
        ghost.as_str(),
        "not-a-uuid",
        pending.as_str(),
        deleted.as_str(),
    ] {
        let path = format!("/v1/posts/{post}/like");
        let resp = app
            .authed(Method::PUT, &path, Some(&other.token))
            .send()
            .await
            .expect("PUT");
        assert_problem(resp, 404, "not_found").await;
        assert_problem(
            app.delete(&path, Some(&other.token)).await,
            404,
            "not_found",
        )
        .await;
        let resp = app
            .get(&format!("/v1/posts/{post}/likes"), Some(&other.token))
            .await;
        assert_problem(resp, 404, "not_found").await;
    }
}

#[tokio::test]
async fn liking_needs_a_token() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let post = id_of(&app.create_post(&author.token, "p").await);
    let path = format!("/v1/posts/{post}/like");
    for method in [Method::PUT, Method::DELETE] {
        let resp = app.authed(method, &path, None).send().await.expect("send");
        assert_problem(resp, 401, "unauthenticated").await;
    }
    assert!(likers_ids(&app, &post, 20).await.is_empty());
}

#[tokio::test]
async fn liked_by_me_shows_in_the_feed_and_explore_for_the_liker() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let fan = member(&app, "fan").await;
    follow(&app, &fan, &author).await;
    let liked = id_of(&app.create_post(&author.token, "liked").await);
    let unliked = id_of(&app.create_post(&author.token, "not liked").await);
    like(&app, &fan.token, &liked).await;

    let expected = vec![unliked.clone(), liked.clone()];
    assert_feed(&app, &fan, 20, &expected).await;
    for (what, items) in [
        (
            "feed",
            app.collect_pages("/v1/feed", Some(&fan.token), 20).await,
        ),
        (
            "explore",
            app.collect_pages("/v1/explore", Some(&fan.token), 20).await,
        ),
    ] {
        assert_eq!(ids(&items), expected, "{what}");
        assert_eq!(items[0]["liked_by_me"], false, "{what}: {}", items[0]);
        assert_eq!(items[1]["liked_by_me"], true, "{what}: {}", items[1]);
    }
    // Anonymous explore likes nothing; the author's own feed shows the author did not like it.
    let anonymous = app.collect_pages("/v1/explore", None, 20).await;
    assert!(
        anonymous.iter().all(|p| p["liked_by_me"] == false),
        "{anonymous:?}"
    );
    let own = app.collect_pages("/v1/feed", Some(&author.token), 20).await;
    assert_eq!(ids(&own), expected);
    assert!(own.iter().all(|p| p["liked_by_me"] == false), "{own:?}");
}

#[tokio::test]
async fn a_deleted_account_takes_its_likes_with_it() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let stayer = member(&app, "stayer").await;
    let leaver = member(&app, "leaver").await;
    let post = id_of(&app.create_post(&author.token, "p").await);
    like(&app, &stayer.token, &post).await;
    like(&app, &leaver.token, &post).await;
    let seen = wait_like_count(&app, &post, None, 2).await;
    assert_eq!(seen["like_count"], 2, "{seen}");

    delete_account(&app, &leaver.token).await;

    // SPEC 2: the account's likes are gone; SPEC 3: like_count is exact after a second.
    assert_eq!(likers_ids(&app, &post, 20).await, [stayer.id()]);
    let seen = wait_like_count(&app, &post, None, 1).await;
    assert_eq!(
        seen["like_count"], 1,
        "the deleted liker's like is not counted: {seen}"
    );
}
