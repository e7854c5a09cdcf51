//! Follows (SPEC 3): follow/unfollow are idempotent 204s, the counters on User are exact at
//! once in both directions, followers/following are pages of UserSummary, newest follow first.

use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::social_helpers::*;

#[tokio::test]
async fn follow_and_unfollow_are_idempotent_and_counts_are_exact_at_once() {
    let app = spawn_social_app().await;
    let alice = member(&app, "alice").await;
    let bob = member(&app, "bob").await;
    assert_eq!(counts(&app, &alice.id()).await, (0, 0));

    // PUT twice: 204 both times, one follow.
    follow(&app, &alice, &bob).await;
    follow(&app, &alice, &bob).await;
    assert_eq!(counts(&app, &alice.id()).await, (0, 1), "alice follows 1");
    assert_eq!(counts(&app, &bob.id()).await, (1, 0), "bob has 1 follower");
    let me = app.me(&alice.token).await;
    assert_eq!(me["following_count"], 1, "{me}");
    assert_eq!(me["followers_count"], 0, "{me}");
    assert_eq!(followers_ids(&app, &bob.id(), 20).await, [alice.id()]);
    assert_eq!(following_ids(&app, &alice.id(), 20).await, [bob.id()]);

    // The other direction.
    follow(&app, &bob, &alice).await;
    assert_eq!(counts(&app, &alice.id()).await, (1, 1));
    assert_eq!(counts(&app, &bob.id()).await, (1, 1));

    // DELETE twice: 204 both times.
    unfollow(&app, &alice, &bob).await;
    unfollow(&app, &alice, &bob).await;
    assert_eq!(counts(&app, &alice.id()).await, (1, 0));
    assert_eq!(counts(&app, &bob.id()).await, (0, 1));
    assert!(followers_ids(&app, &bob.id(), 20).await.is_empty());
    assert!(following_ids(&app, &alice.id(), 20).await.is_empty());
    assert_eq!(following_ids(&app, &bob.id(), 20).await, [alice.id()]);

    unfollow(&app, &bob, &alice).await;
    assert_eq!(counts(&app, &alice.id()).await, (0, 0));
    assert_eq!(counts(&app, &bob.id()).await, (0, 0));

    // Unfollowing someone you never followed is a 204 too, and changes nothing.
    let carol = member(&app, "carol").await;
    unfollow(&app, &carol, &alice).await;
    assert_eq!(counts(&app, &alice.id()).await, (0, 0));
    assert_eq!(counts(&app, &carol.id()).await, (0, 0));
}

#[tokio::test]
async fn following_yourself_is_validation_failed() {
    let app = spawn_social_app().await;
    let narcissus = member(&app, "narcissus").await;
    let resp = follow_resp(&app, &narcissus.token, &narcissus.id()).await;
    assert_problem(resp, 400, "validation_failed").await;
    assert_eq!(
        counts(&app, &narcissus.id()).await,
        (0, 0),
        "nothing changed"
    );
    assert!(followers_ids(&app, &narcissus.id(), 20).await.is_empty());
}

#[tokio::test]
async fn following_an_unknown_user_is_not_found() {
    let app = spawn_social_app().await;
    let seeker = member(&app, "seeker").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    for id in [ghost.as_str(), "not-a-uuid"] {
        let resp = follow_resp(&app, &seeker.token, id).await;
        assert_problem(resp, 404, "not_found").await;
        for list in ["followers", "following"] {
            let resp = app.get(&format!("/v1/users/{id}/{list}"), None).await;
            assert_problem(resp, 404, "not_found").await;
        }
    }
    assert_eq!(counts(&app, &seeker.id()).await, (0, 0));
}

#[tokio::test]
async fn follow_and_unfollow_need_a_token() {
    let app = spawn_social_app().await;
    let target = member(&app, "target").await;
    let path = format!("/v1/users/{}/follow", target.id());
    for method in [Method::PUT, Method::DELETE] {
        let resp = app.authed(method, &path, None).send().await.expect("send");
        assert_problem(resp, 401, "unauthenticated").await;
    }
    assert_eq!(counts(&app, &target.id()).await, (0, 0));
}

#[tokio::test]
async fn followers_and_following_are_pages_newest_follow_first() {
    let app = spawn_social_app().await;
    let star = member(&app, "star").await;
    let fans = members(&app, "fan", 5).await;
    follow_in_turn(&app, &fans, &star).await;
    let expected: Vec<String> = fans.iter().rev().map(Member::id).collect();
    for limit in [1, 2, 3, 5, 100] {
        assert_eq!(
            followers_ids(&app, &star.id(), limit).await,
            expected,
            "followers, newest follow first, pages of {limit}"
        );
    }
    let first = expect_status(
        app.get(&format!("/v1/users/{}/followers?limit=2", star.id()), None)
            .await,
        StatusCode::OK,
    )
    .await;
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{first}");
    assert_summary_of(&items[0], &fans[4].user);
    assert!(first["next_cursor"].is_string(), "{first}");

    // One user following many: newest follow first as well.
    let fan = &fans[0];
    let others = members(&app, "idol", 4).await;
    for other in &others {
        follow(&app, fan, other).await;
        distinct_ms().await;
    }
    let mut expected: Vec<String> = others.iter().rev().map(Member::id).collect();
    expected.push(star.id());
    for limit in [1, 2, 4, 20] {
        assert_eq!(
            following_ids(&app, &fan.id(), limit).await,
            expected,
            "following, newest follow first, pages of {limit}"
        );
    }

    // Unfollow and follow again: that is a new follow, so it comes first.
    unfollow(&app, &fans[1], &star).await;
    follow(&app, &fans[1], &star).await;
    let expected = vec![
        fans[1].id(),
        fans[4].id(),
        fans[3].id(),
        fans[2].id(),
        fans[0].id(),
    ];
    assert_eq!(followers_ids(&app, &star.id(), 2).await, expected);
    assert_eq!(counts(&app, &star.id()).await, (5, 0));
}

#[tokio::test]
async fn follower_pages_are_stable_while_new_follows_arrive() {
    let app = spawn_social_app().await;
    let star = member(&app, "star").await;
    let early = members(&app, "early", 6).await;
    let late = members(&app, "late", 4).await;
    follow_in_turn(&app, &early, &star).await;
    let list = format!("/v1/users/{}/followers", star.id());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut late_fans = late.iter();
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("{list}?limit=2&cursor={c}"),
            None => format!("{list}?limit=2"),
        };
        let page = expect_status(app.get(&path, None).await, StatusCode::OK).await;
        seen.extend(summary_ids(page["items"].as_array().expect("items")));
        // A new follow between page reads is newer than the cursor: it must not shift the rest.
        if let Some(fan) = late_fans.next() {
            follow(&app, fan, &star).await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = early.iter().rev().map(Member::id).collect();
    assert_eq!(seen, expected, "no repeats, no gaps");
    assert_eq!(counts(&app, &star.id()).await, (9, 0));
}

#[tokio::test]
async fn follower_lists_check_limit_and_cursor() {
    let app = spawn_social_app().await;
    let star = member(&app, "star").await;
    let fan = member(&app, "fan").await;
    follow(&app, &fan, &star).await;
    for list in [
        format!("/v1/users/{}/followers", star.id()),
        format!("/v1/users/{}/following", fan.id()),
    ] {
        for bad in ["0", "101", "abc"] {
            let resp = app.get(&format!("{list}?limit={bad}"), None).await;
            assert_invalid_field(resp, "limit").await;
        }
        for bad in ["garbage!!", "bm90LWEtY3Vyc29y", "MTIzNA"] {
            let resp = app.get(&format!("{list}?cursor={bad}"), None).await;
            assert_problem(resp, 400, "invalid_cursor").await;
        }
        let page = expect_status(app.get(&list, None).await, StatusCode::OK).await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
        assert!(page["next_cursor"].is_null(), "{page}");
    }
}

#[tokio::test]
async fn deleting_an_account_takes_its_follows_out_of_the_counts_and_lists() {
    let app = spawn_social_app().await;
    let stayer = member(&app, "stayer").await;
    let other = member(&app, "other").await;
    let leaver = member(&app, "leaver").await;
    // The leaver follows both; the stayer follows the leaver back; other follows the stayer.
    follow(&app, &leaver, &stayer).await;
    follow(&app, &leaver, &other).await;
    follow(&app, &stayer, &leaver).await;
    follow(&app, &other, &stayer).await;
    assert_eq!(counts(&app, &stayer.id()).await, (2, 1));
    assert_eq!(counts(&app, &other.id()).await, (1, 1));
    assert_eq!(counts(&app, &leaver.id()).await, (1, 2));

    delete_account(&app, &leaver.token).await;

    assert_eq!(
        counts(&app, &stayer.id()).await,
        (1, 0),
        "a deleted follower and a deleted followee are no longer counted"
    );
    assert_eq!(counts(&app, &other.id()).await, (0, 1));
    assert_eq!(followers_ids(&app, &stayer.id(), 20).await, [other.id()]);
    assert!(following_ids(&app, &stayer.id(), 20).await.is_empty());
    assert!(followers_ids(&app, &other.id(), 20).await.is_empty());
    assert_eq!(following_ids(&app, &other.id(), 20).await, [stayer.id()]);
    let resp = app
        .get(&format!("/v1/users/{}/followers", leaver.id()), None)
        .await;
    assert_problem(resp, 404, "not_found").await;
    let resp = follow_resp(&app, &stayer.token, &leaver.id()).await;
    assert_problem(resp, 404, "not_found").await;
}
