//! The home feed and explore (SPEC 3), with `feed.fanout_threshold = 3`: authors with fewer
//! than 3 followers are pushed by `fanout_post` jobs, authors with 3 or more are pulled at read
//! time, and one cursor runs over both. "Within 2 s" properties are polled (up to 5 s), never
//! timed.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::social_helpers::*;

/// Posts `n` text posts and returns their ids, oldest first.
async fn post_n(app: &TestApp, author: &Member, label: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(id_of(
            &app.create_post(&author.token, &format!("{label} {i}"))
                .await,
        ));
    }
    out
}

/// Newest first of ids given oldest first.
fn rev(ids: &[String]) -> Vec<String> {
    ids.iter().rev().cloned().collect()
}

#[tokio::test]
async fn the_feed_needs_a_token() {
    let app = spawn_social_app().await;
    assert_problem(app.get("/v1/feed", None).await, 401, "unauthenticated").await;
    assert_problem(
        app.get("/v1/feed", Some("not-a-jwt")).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn the_feed_holds_your_own_posts_newest_first() {
    let app = spawn_social_app().await;
    let me = member(&app, "myself").await;
    let stranger = member(&app, "stranger").await;
    let page = expect_status(app.get("/v1/feed", Some(&me.token)).await, StatusCode::OK).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");

    let mine = post_n(&app, &me, "mine", 4).await;
    // Someone I do not follow posts too: not in my feed.
    post_n(&app, &stranger, "theirs", 2).await;
    assert_feed(&app, &me, 20, &rev(&mine)).await;
    assert_feed(&app, &me, 1, &rev(&mine)).await;
    let items = app.collect_pages("/v1/feed", Some(&me.token), 20).await;
    assert_eq!(items[0]["caption"], "mine 3");
    assert_summary_of(&items[0]["author"], &me.user);
    assert_eq!(items[0]["status"], "published");
}

#[tokio::test]
async fn a_push_authors_new_post_reaches_followers() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let readers = members(&app, "reader", 2).await;
    let outsider = member(&app, "outsider").await;
    for reader in &readers {
        follow(&app, reader, &author).await;
    }
    assert_eq!(
        counts(&app, &author.id()).await.0,
        2,
        "below the threshold: pushed"
    );
    let posts = post_n(&app, &author, "pushed", 3).await;
    for reader in &readers {
        assert_feed(&app, reader, 2, &rev(&posts)).await;
    }
    assert_feed(&app, &author, 2, &rev(&posts)).await;
    assert_feed(&app, &outsider, 2, &[]).await;

    // After the fan-out surely finished, still exactly once each.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for reader in &readers {
        let feed = feed_ids(&app, &reader.token, 1).await;
        assert_eq!(feed, rev(&posts), "no duplicates once the fan-out is done");
    }
}

#[tokio::test]
async fn a_pull_authors_new_post_reaches_followers() {
    let app = spawn_social_app().await;
    let author = member(&app, "celebrity").await;
    let readers = members(&app, "reader", 3).await;
    let outsider = member(&app, "outsider").await;
    for reader in &readers {
        follow(&app, reader, &author).await;
    }
    assert_eq!(
        counts(&app, &author.id()).await.0,
        3,
        "at the threshold: pulled"
    );
    let posts = post_n(&app, &author, "pulled", 3).await;
    for reader in &readers {
        assert_feed(&app, reader, 2, &rev(&posts)).await;
    }
    assert_feed(&app, &outsider, 2, &[]).await;

    // Merged with the reader's own posts and a push author's posts under one cursor.
    let small = member(&app, "small").await;
    follow(&app, &readers[0], &small).await;
    let own = id_of(&app.create_post(&readers[0].token, "own").await);
    let small_post = id_of(&app.create_post(&small.token, "small").await);
    let late = id_of(&app.create_post(&author.token, "pulled late").await);
    let mut expected = vec![late, small_post, own];
    expected.extend(rev(&posts));
    for limit in [1, 2, 3, 20] {
        assert_feed(&app, &readers[0], limit, &expected).await;
    }
}

#[tokio::test]
async fn crossing_the_threshold_up_and_down_keeps_every_feed_exact() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let f = members(&app, "follower", 4).await;

    // Two followers: pushed.
    follow(&app, &f[0], &author).await;
    follow(&app, &f[1], &author).await;
    let p1 = id_of(&app.create_post(&author.token, "p1").await);
    let own = id_of(&app.create_post(&f[0].token, "f0's own").await);
    let p2 = id_of(&app.create_post(&author.token, "p2").await);
    assert_feed(&app, &f[0], 2, &[p2.clone(), own.clone(), p1.clone()]).await;
    assert_feed(&app, &f[1], 2, &[p2.clone(), p1.clone()]).await;

    // The third follower: now at the threshold, pulled. The newcomer sees the recent posts.
    follow(&app, &f[2], &author).await;
    assert_feed(&app, &f[2], 2, &[p2.clone(), p1.clone()]).await;
    let p3 = id_of(&app.create_post(&author.token, "p3").await);
    // The fourth follower, then another post.
    follow(&app, &f[3], &author).await;
    assert_eq!(counts(&app, &author.id()).await.0, 4);
    let p4 = id_of(&app.create_post(&author.token, "p4").await);
    let all = vec![p4.clone(), p3.clone(), p2.clone(), p1.clone()];
    let with_own = vec![p4.clone(), p3.clone(), p2.clone(), own.clone(), p1.clone()];
    for (i, reader) in f.iter().enumerate() {
        let expected = if i == 0 { &with_own } else { &all };
        for limit in [1, 2, 3, 20] {
            assert_feed(&app, reader, limit, expected).await;
        }
    }

    // Down again: two unfollow, the author is pushed once more.
    unfollow(&app, &f[3], &author).await;
    unfollow(&app, &f[2], &author).await;
    assert_eq!(counts(&app, &author.id()).await.0, 2);
    assert_feed(&app, &f[2], 2, &[]).await;
    assert_feed(&app, &f[3], 2, &[]).await;
    let p5 = id_of(&app.create_post(&author.token, "p5").await);
    let mut expected_f1 = vec![p5.clone()];
    expected_f1.extend(all.iter().cloned());
    let mut expected_f0 = vec![p5.clone()];
    expected_f0.extend(with_own.iter().cloned());
    assert_feed(&app, &f[0], 2, &expected_f0).await;
    assert_feed(&app, &f[1], 3, &expected_f1).await;
    // After the fan-out of p5 surely ran: the unfollowers got nothing, nobody got a duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_feed(&app, &f[2], 2, &[]).await;
    assert_feed(&app, &f[3], 2, &[]).await;
    assert_feed(&app, &f[1], 1, &expected_f1).await;

    // Up once more: a re-follow sees everything, old and new, once.
    follow(&app, &f[2], &author).await;
    for limit in [1, 4, 20] {
        assert_feed(&app, &f[2], limit, &expected_f1).await;
        assert_feed(&app, &f[0], limit, &expected_f0).await;
    }
}

#[tokio::test]
async fn unfollowing_removes_the_authors_posts() {
    let app = spawn_social_app().await;
    let small = member(&app, "small").await;
    let big = member(&app, "big").await;
    let readers = members(&app, "reader", 3).await;
    follow(&app, &readers[0], &small).await;
    for reader in &readers {
        follow(&app, reader, &big).await;
    }
    let small_posts = post_n(&app, &small, "small", 2).await;
    let big_posts = post_n(&app, &big, "big", 2).await;
    let mut everything: Vec<String> = small_posts.iter().chain(&big_posts).cloned().collect();
    everything.reverse();
    assert_feed(&app, &readers[0], 3, &everything).await;

    // Unfollow the push author: their (fanned-out) posts leave.
    unfollow(&app, &readers[0], &small).await;
    assert_feed(&app, &readers[0], 3, &rev(&big_posts)).await;
    // Unfollow the pull author too: empty.
    unfollow(&app, &readers[0], &big).await;
    assert_feed(&app, &readers[0], 3, &[]).await;
    // The others keep theirs.
    assert_feed(&app, &readers[1], 3, &rev(&big_posts)).await;
}

#[tokio::test]
async fn deleting_a_post_removes_it_from_feeds_and_explore() {
    let app = spawn_social_app().await;
    let small = member(&app, "small").await;
    let big = member(&app, "big").await;
    let readers = members(&app, "reader", 3).await;
    follow(&app, &readers[0], &small).await;
    for reader in &readers {
        follow(&app, reader, &big).await;
    }
    let s_keep = id_of(&app.create_post(&small.token, "small keep").await);
    let s_gone = id_of(&app.create_post(&small.token, "small gone").await);
    let b_keep = id_of(&app.create_post(&big.token, "big keep").await);
    let b_gone = id_of(&app.create_post(&big.token, "big gone").await);
    let before = vec![
        b_gone.clone(),
        b_keep.clone(),
        s_gone.clone(),
        s_keep.clone(),
    ];
    assert_feed(&app, &readers[0], 2, &before).await;
    // Let the push author's fan-out land first, so the delete has entries to remove.
    tokio::time::sleep(Duration::from_millis(300)).await;

    delete_post(&app, &small.token, &s_gone).await;
    delete_post(&app, &big.token, &b_gone).await;
    assert_feed(&app, &readers[0], 2, &[b_keep.clone(), s_keep.clone()]).await;
    assert_feed(&app, &readers[1], 2, std::slice::from_ref(&b_keep)).await;
    assert_feed(&app, &small, 2, std::slice::from_ref(&s_keep)).await;
    let listed = wait_explore(&app, 3, &[b_keep.clone(), s_keep.clone()]).await;
    assert_eq!(
        listed,
        [b_keep, s_keep],
        "explore without the deleted posts"
    );
}

#[tokio::test]
async fn deleting_the_authors_account_removes_their_posts() {
    let app = spawn_social_app().await;
    let small = member(&app, "small").await;
    let big = member(&app, "big").await;
    let readers = members(&app, "reader", 3).await;
    follow(&app, &readers[0], &small).await;
    for reader in &readers {
        follow(&app, reader, &big).await;
    }
    let small_posts = post_n(&app, &small, "small", 2).await;
    let big_posts = post_n(&app, &big, "big", 2).await;
    let own = id_of(&app.create_post(&readers[0].token, "own").await);
    let mut everything: Vec<String> = small_posts.iter().chain(&big_posts).cloned().collect();
    everything.push(own.clone());
    everything.reverse();
    assert_feed(&app, &readers[0], 2, &everything).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    delete_account(&app, &small.token).await;
    let mut rest = vec![own.clone()];
    rest.extend(rev(&big_posts));
    assert_feed(&app, &readers[0], 2, &rest).await;

    delete_account(&app, &big.token).await;
    assert_feed(&app, &readers[0], 2, std::slice::from_ref(&own)).await;
    assert_feed(&app, &readers[1], 2, &[]).await;
    let listed = wait_explore(&app, 2, std::slice::from_ref(&own)).await;
    assert_eq!(listed, [own], "explore without the deleted accounts' posts");
}

#[tokio::test]
async fn a_new_follow_shows_the_followees_recent_posts() {
    let app = spawn_social_app().await;
    let small = member(&app, "small").await;
    let big = member(&app, "big").await;
    let fans = members(&app, "fan", 3).await;
    let reader = member(&app, "reader").await;
    for fan in &fans {
        follow(&app, fan, &big).await;
    }
    let small_posts = post_n(&app, &small, "small", 3).await;
    let big_posts = post_n(&app, &big, "big", 3).await;
    // Let the fan-outs run before anyone new follows.
    assert_feed(&app, &fans[0], 20, &rev(&big_posts)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_feed(&app, &reader, 20, &[]).await;

    follow(&app, &reader, &small).await;
    assert_feed(&app, &reader, 2, &rev(&small_posts)).await;
    follow(&app, &reader, &big).await;
    let mut expected: Vec<String> = small_posts.iter().chain(&big_posts).cloned().collect();
    expected.reverse();
    assert_feed(&app, &reader, 2, &expected).await;
    // And the small author's new post after that arrives as usual.
    let newer = id_of(&app.create_post(&small.token, "newer").await);
    expected.insert(0, newer);
    assert_feed(&app, &reader, 4, &expected).await;
}

#[tokio::test]
async fn pending_posts_stay_out_of_feeds_and_explore_until_published() {
    let app = spawn_social_app().await;
    let author = member(&app, "author").await;
    let reader = member(&app, "reader").await;
    follow(&app, &reader, &author).await;
    let text = id_of(&app.create_post(&author.token, "text").await);
    let (pending, ticket) = create_pending_post(&app, &author.token, "photo").await;
    let pending_id = id_of(&pending);
    let after = id_of(&app.create_post(&author.token, "after").await);

    // Give any (wrong) fan-out of the pending post time to land, then check every list.
    assert_feed(&app, &reader, 20, &[after.clone(), text.clone()]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published_only = vec![after.clone(), text.clone()];
    assert_eq!(feed_ids(&app, &reader.token, 2).await, published_only);
    assert_eq!(
        feed_ids(&app, &author.token, 2).await,
        published_only,
        "the author's own pending post is not in the home feed either"
    );
    assert_eq!(explore_ids(&app, None, 2).await, published_only);
    assert_eq!(
        explore_ids(&app, Some(&author.token), 2).await,
        published_only
    );

    let published = publish_pending_post(&app, &author.token, &pending, &ticket).await;
    assert_eq!(published["status"], "published");
    let expected = vec![after, pending_id, text];
    assert_feed(&app, &reader, 2, &expected).await;
    assert_feed(&app, &author, 2, &expected).await;
    let listed = wait_explore(&app, 2, &expected).await;
    assert_eq!(listed, expected, "explore, once published");
}

#[tokio::test]
async fn feed_pages_check_limit_and_cursor_and_are_stable_while_posts_arrive() {
    let app = spawn_social_app().await;
    let reader = member(&app, "reader").await;
    let small = member(&app, "small").await;
    let big = member(&app, "big").await;
    let fans = members(&app, "fan", 2).await;
    follow(&app, &reader, &small).await;
    follow(&app, &reader, &big).await;
    for fan in &fans {
        follow(&app, fan, &big).await;
    }
    let mut posted = Vec::new();
    for i in 0..3 {
        posted.push(app.create_post(&small.token, &format!("s{i}")).await);
        posted.push(app.create_post(&big.token, &format!("b{i}")).await);
        posted.push(app.create_post(&reader.token, &format!("r{i}")).await);
    }
    let refs: Vec<&serde_json::Value> = posted.iter().collect();
    let snapshot = newest_first(&refs);
    assert_feed(&app, &reader, 3, &snapshot).await;

    for bad in ["0", "101", "abc"] {
        let resp = app
            .get(&format!("/v1/feed?limit={bad}"), Some(&reader.token))
            .await;
        assert_invalid_field(resp, "limit").await;
    }
    for bad in ["garbage!!", "bm90LWEtY3Vyc29y", "MTIzNA"] {
        let resp = app
            .get(&format!("/v1/feed?cursor={bad}"), Some(&reader.token))
            .await;
        assert_problem(resp, 400, "invalid_cursor").await;
    }

    // Posts by all three kinds of source arrive between page reads: they are newer than the
    // cursor, so the pages read go on exactly as the snapshot.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/v1/feed?limit=2&cursor={c}"),
            None => "/v1/feed?limit=2".to_owned(),
        };
        let page = expect_status(app.get(&path, Some(&reader.token)).await, StatusCode::OK).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "{page}");
        seen.extend(ids(items));
        let source = [&small, &big, &reader][round % 3];
        posted.push(
            app.create_post(&source.token, &format!("new {round}"))
                .await,
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, snapshot, "no repeats or gaps while posts arrive");
    let refs: Vec<&serde_json::Value> = posted.iter().collect();
    assert_feed(&app, &reader, 4, &newest_first(&refs)).await;
}

#[tokio::test]
async fn explore_lists_everyones_published_posts_newest_first() {
    let app = spawn_social_app().await;
    let users = members(&app, "user", 3).await;
    let mut posted = Vec::new();
    for round in 0..3 {
        for user in &users {
            posted.push(app.create_post(&user.token, &format!("r{round}")).await);
        }
    }
    let refs: Vec<&serde_json::Value> = posted.iter().collect();
    let snapshot = newest_first(&refs);
    // Auth is optional; the list is the same either way, and no follows are needed.
    for limit in [1, 2, 4, 20] {
        assert_eq!(
            explore_ids(&app, None, limit).await,
            snapshot,
            "pages of {limit}"
        );
    }
    assert_eq!(explore_ids(&app, Some(&users[0].token), 3).await, snapshot);
    let page = expect_status(app.get("/v1/explore?limit=2", None).await, StatusCode::OK).await;
    assert_eq!(page["items"][0]["caption"], "r2");
    assert_summary_of(&page["items"][0]["author"], &users[2].user);

    for bad in ["0", "101", "abc"] {
        let resp = app.get(&format!("/v1/explore?limit={bad}"), None).await;
        assert_invalid_field(resp, "limit").await;
    }
    for bad in ["garbage!!", "bm90LWEtY3Vyc29y", "MTIzNA"] {
        let resp = app.get(&format!("/v1/explore?cursor={bad}"), None).await;
        assert_problem(resp, 400, "invalid_cursor").await;
    }

    // Stable while posts arrive.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/v1/explore?limit=2&cursor={c}"),
            None => "/v1/explore?limit=2".to_owned(),
        };
        let page = expect_status(app.get(&path, None).await, StatusCode::OK).await;
        seen.extend(ids(page["items"].as_array().expect("items")));
        app.create_post(&users[round % 3].token, &format!("new {round}"))
            .await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, snapshot, "no repeats or gaps while posts arrive");
}
