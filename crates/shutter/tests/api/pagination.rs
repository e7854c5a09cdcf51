//! Keyset pagination (SPEC 1, "Lists"): limits, default page size, cursors, and stability while
//! new items arrive.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

async fn page(app: &TestApp, path: &str) -> Value {
    expect_status(app.get(path, None).await, StatusCode::OK).await
}

#[tokio::test]
async fn limit_outside_1_to_100_is_validation_failed() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("lister").await;
    let post = app.create_post(&token, "p").await;
    let lists = [
        format!("/v1/users/{}/posts", id_of(&user)),
        format!("/v1/posts/{}/comments", id_of(&post)),
    ];
    for list in &lists {
        for bad in ["0", "101", "abc", "-1", "1.5"] {
            let resp = app.get(&format!("{list}?limit={bad}"), None).await;
            assert_invalid_field(resp, "limit").await;
        }
        for good in ["1", "100"] {
            page(&app, &format!("{list}?limit={good}")).await;
        }
    }
}

#[tokio::test]
async fn the_default_page_holds_20_items() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("many").await;
    let post = app.create_post(&token, "the post").await;
    for i in 0..22 {
        app.create_post(&token, &format!("post {i}")).await;
        app.create_comment(&token, &id_of(&post), &format!("comment {i}"))
            .await;
    }
    for list in [
        format!("/v1/users/{}/posts", id_of(&user)),
        format!("/v1/posts/{}/comments", id_of(&post)),
    ] {
        let first = page(&app, &list).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 20, "{list}");
        let cursor = first["next_cursor"].as_str().expect("a next page");
        let second = page(&app, &format!("{list}?cursor={cursor}")).await;
        let rest = second["items"].as_array().unwrap();
        assert!(second["next_cursor"].is_null(), "{second}");
        // 23 posts, 22 comments.
        assert!(rest.len() == 3 || rest.len() == 2, "{list}: {second}");
        let mut all = ids(first["items"].as_array().unwrap());
        all.extend(ids(rest));
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "no repeats");
    }
}

#[tokio::test]
async fn a_cursor_that_does_not_parse_is_invalid_cursor() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("cursory").await;
    let post = app.create_post(&token, "p").await;
    for list in [
        format!("/v1/users/{}/posts", id_of(&user)),
        format!("/v1/posts/{}/comments", id_of(&post)),
    ] {
        for bad in ["garbage!!", "bm90LWEtY3Vyc29y", "MTIzNA", "%00"] {
            let resp = app.get(&format!("{list}?cursor={bad}"), None).await;
            assert_problem(resp, 400, "invalid_cursor").await;
        }
    }
}

#[tokio::test]
async fn pages_of_a_users_posts_are_exact_and_stable_while_posts_arrive() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("stable").await;
    let mut old = Vec::new();
    for i in 0..7 {
        old.push(id_of(&app.create_post(&token, &format!("old {i}")).await));
    }
    let list = format!("/v1/users/{}/posts", id_of(&user));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{list}?limit=3&cursor={c}"),
            None => format!("{list}?limit=3"),
        };
        let body = page(&app, &path).await;
        seen.extend(ids(body["items"].as_array().unwrap()));
        pages += 1;
        // New posts arrive between page reads; they are newer than the cursor, so they must
        // neither shift nor repeat what comes next.
        app.create_post(&token, &format!("new {pages}")).await;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let expected: Vec<String> = old.iter().rev().cloned().collect();
    assert_eq!(seen, expected, "newest first, no repeats, no gaps");
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn pages_of_comments_are_exact_and_stable_while_comments_arrive() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("chatty").await;
    let post = app.create_post(&token, "thread").await;
    let post_id = id_of(&post);
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(id_of(
            &app.create_comment(&token, &post_id, &format!("c{i}")).await,
        ));
    }
    let list = format!("/v1/posts/{post_id}/comments");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0..20 {
        let path = match &cursor {
            Some(c) => format!("{list}?limit=2&cursor={c}"),
            None => format!("{list}?limit=2"),
        };
        let body = page(&app, &path).await;
        seen.extend(ids(body["items"].as_array().unwrap()));
        // Oldest first: comments added meanwhile come at the end, after every old one.
        if round < 2 {
            created.push(id_of(
                &app.create_comment(&token, &post_id, &format!("late {round}"))
                    .await,
            ));
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created, "oldest first, no repeats, no gaps");
}

#[tokio::test]
async fn deleting_the_item_a_cursor_names_does_not_break_the_next_page() {
    let app = spawn_app().await;
    let (user, token, _) = app.register("deleter").await;
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(id_of(&app.create_post(&token, &format!("p{i}")).await));
    }
    let list = format!("/v1/users/{}/posts", id_of(&user));
    let first = page(&app, &format!("{list}?limit=2")).await;
    assert_eq!(
        ids(first["items"].as_array().unwrap()),
        vec![posts[4].clone(), posts[3].clone()]
    );
    // The last item of the page goes away before the next read.
    let resp = app
        .delete(&format!("/v1/posts/{}", posts[3]), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = page(&app, &format!("{list}?limit=2&cursor={cursor}")).await;
    assert_eq!(
        ids(second["items"].as_array().unwrap()),
        vec![posts[2].clone(), posts[1].clone()]
    );
}

#[tokio::test]
async fn a_full_last_page_may_point_at_an_empty_one() {
    // With exactly `limit` items left, either the page says there is no next one, or the next
    // one is empty and ends the list: never an error, never a repeat.
    let app = spawn_app().await;
    let (user, token, _) = app.register("exact").await;
    for i in 0..4 {
        app.create_post(&token, &format!("p{i}")).await;
    }
    let all = app
        .collect_pages(&format!("/v1/users/{}/posts", id_of(&user)), None, 2)
        .await;
    assert_eq!(all.len(), 4);
    let all = app
        .collect_pages(&format!("/v1/users/{}/posts", id_of(&user)), None, 4)
        .await;
    assert_eq!(all.len(), 4);
}
