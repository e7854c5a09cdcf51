//! Own profile, public profiles, limits and account deletion (SPEC 2).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn me_shows_the_full_user() {
    let app = spawn_app().await;
    let (user, access, _) = app.register("myself").await;
    let me = app.me(&access).await;
    assert_eq!(me, user, "GET /v1/users/me is the User of registration");
    for key in [
        "id",
        "username",
        "display_name",
        "bio",
        "tier",
        "created_at",
        "followers_count",
        "following_count",
        "posts_count",
    ] {
        assert!(me.get(key).is_some(), "User has {key}: {me}");
    }
}

#[tokio::test]
async fn patch_me_changes_display_name_and_bio() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("patcher").await;
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&access),
            &json!({"display_name": "Pat Cher", "bio": "Takes photos.\nOf cats."}),
        )
        .await;
    let user = expect_status(resp, StatusCode::OK).await;
    assert_eq!(user["display_name"], "Pat Cher");
    assert_eq!(user["bio"], "Takes photos.\nOf cats.");
    assert_eq!(user["username"], "patcher");
    assert_eq!(app.me(&access).await, user, "the change is stored");

    // Only what is sent changes.
    let resp = app
        .patch_json("/v1/users/me", Some(&access), &json!({"bio": "New bio"}))
        .await;
    let user = expect_status(resp, StatusCode::OK).await;
    assert_eq!(user["display_name"], "Pat Cher");
    assert_eq!(user["bio"], "New bio");
}

#[tokio::test]
async fn patch_me_enforces_lengths() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("limited").await;
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&access),
            &json!({"display_name": "d".repeat(101)}),
        )
        .await;
    assert_invalid_field(resp, "display_name").await;
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&access),
            &json!({"bio": "b".repeat(501)}),
        )
        .await;
    assert_invalid_field(resp, "bio").await;
    let resp = app
        .patch_json("/v1/users/me", Some(&access), &json!({"display_name": 5}))
        .await;
    assert_invalid_field(resp, "display_name").await;
    // Nothing was stored by the refused requests.
    assert_eq!(app.me(&access).await["bio"], "");

    // Exactly at the bounds (counted in characters, not bytes).
    let resp = app
        .patch_json(
            "/v1/users/me",
            Some(&access),
            &json!({"display_name": "ä".repeat(100), "bio": "ö".repeat(500)}),
        )
        .await;
    let user = expect_status(resp, StatusCode::OK).await;
    assert_eq!(user["display_name"].as_str().unwrap().chars().count(), 100);
    assert_eq!(user["bio"].as_str().unwrap().chars().count(), 500);
}

#[tokio::test]
async fn public_profile_by_id_and_by_username_needs_no_auth() {
    let app = spawn_app().await;
    let (user, access, _) = app.register("famous").await;
    app.patch_json("/v1/users/me", Some(&access), &json!({"bio": "hello"}))
        .await;
    let id = id_of(&user);

    let by_id = expect_status(
        app.get(&format!("/v1/users/{id}"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_id["id"], user["id"]);
    assert_eq!(by_id["username"], "famous");
    assert_eq!(by_id["bio"], "hello");
    assert_eq!(by_id["posts_count"], 0);

    let by_name = expect_status(
        app.get("/v1/users/by-username/famous", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_name, by_id);
    // Usernames are case-insensitive, so the lookup is too.
    let by_upper = expect_status(
        app.get("/v1/users/by-username/FAMOUS", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_upper["id"], user["id"]);
}

#[tokio::test]
async fn unknown_users_are_not_found() {
    let app = spawn_app().await;
    let ghost = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/v1/users/{ghost}"), None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/users/not-a-uuid", None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/users/by-username/nobody_at_all", None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn posts_count_is_exact() {
    let app = spawn_app().await;
    let (user, access, _) = app.register("counter").await;
    let p1 = app.create_post(&access, "one").await;
    app.create_post(&access, "two").await;
    let path = format!("/v1/users/{}", id_of(&user));
    let profile = expect_status(app.get(&path, None).await, StatusCode::OK).await;
    assert_eq!(profile["posts_count"], 2);
    assert_eq!(app.me(&access).await["posts_count"], 2);
    let resp = app
        .delete(&format!("/v1/posts/{}", id_of(&p1)), Some(&access))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let profile = expect_status(app.get(&path, None).await, StatusCode::OK).await;
    assert_eq!(profile["posts_count"], 1);
}

#[tokio::test]
async fn limits_of_the_basic_tier() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("basicuser").await;
    let limits = expect_status(app.get("/v1/limits", Some(&access)).await, StatusCode::OK).await;
    assert_eq!(
        limits,
        json!({
            "tier": "basic",
            "limits": {
                "max_file_size": 104_857_600u64,
                "max_concurrent_uploads": 10,
                "storage_quota": 10_737_418_240u64,
                "posts_per_minute": 10,
                "max_pixels": 100_000_000u64,
                "post_media_types": ["image/jpeg", "image/png", "image/webp"],
            },
            "usage": {"bytes_stored": 0, "uploads_open": 0},
        })
    );
}

#[tokio::test]
async fn limits_follow_the_configuration() {
    let app = spawn_app_with(|c| {
        c.tiers.basic.posts_per_minute = 3;
        c.tiers.basic.max_concurrent_uploads = 4;
        c.media.max_pixels = 1234;
    })
    .await;
    let (_, access, _) = app.register("configured").await;
    let limits = expect_status(app.get("/v1/limits", Some(&access)).await, StatusCode::OK).await;
    assert_eq!(limits["limits"]["posts_per_minute"], 3);
    assert_eq!(limits["limits"]["max_concurrent_uploads"], 4);
    assert_eq!(limits["limits"]["max_pixels"], 1234);
}

#[tokio::test]
async fn delete_me_with_the_wrong_password_is_refused() {
    let app = spawn_app().await;
    let (_, access, _) = app.register("keeper").await;
    let resp = app
        .delete_json(
            "/v1/users/me",
            Some(&access),
            &json!({"password": "wrong password"}),
        )
        .await;
    assert_problem(resp, 401, "invalid_credentials").await;
    // Still there.
    assert_eq!(app.me(&access).await["username"], "keeper");
    expect_status(app.login("keeper", PASSWORD).await, StatusCode::OK).await;
}

#[tokio::test]
async fn delete_me_removes_the_account_and_everything_it_owns() {
    let app = spawn_app().await;
    let (leaver, leaver_token, leaver_refresh) = app.register("leaving").await;
    let (_, stayer_token, _) = app.register("staying").await;

    let own_post = app.create_post(&leaver_token, "my last post").await;
    let others_post = app.create_post(&stayer_token, "a post that stays").await;
    let others_id = id_of(&others_post);
    app.create_comment(&stayer_token, &others_id, "first, by the stayer")
        .await;
    app.create_comment(&leaver_token, &others_id, "by the leaver")
        .await;
    app.create_comment(&leaver_token, &id_of(&own_post), "on my own post")
        .await;
    assert_eq!(app.get_post(&others_id, None).await["comment_count"], 2);

    let resp = app
        .delete_json(
            "/v1/users/me",
            Some(&leaver_token),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // Its tokens stop at once.
    assert_problem(
        app.get("/v1/users/me", Some(&leaver_token)).await,
        401,
        "unauthenticated",
    )
    .await;
    let resp = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": leaver_refresh}),
        )
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
    assert_problem(
        app.login("leaving", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;

    // Its profile and posts are gone.
    let leaver_id = id_of(&leaver);
    assert_problem(
        app.get(&format!("/v1/users/{leaver_id}"), None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/users/by-username/leaving", None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(
            &format!("/v1/posts/{}", id_of(&own_post)),
            Some(&stayer_token),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/users/{leaver_id}/posts"), None).await,
        404,
        "not_found",
    )
    .await;

    // Its comments are gone from others' posts, and the counts follow.
    let post = app.get_post(&others_id, None).await;
    assert_eq!(post["comment_count"], 1, "{post}");
    let preview = post["comments_preview"].as_array().unwrap();
    assert_eq!(preview.len(), 1, "{post}");
    assert_eq!(preview[0]["text"], "first, by the stayer");
    let comments = expect_status(
        app.get(&format!("/v1/posts/{others_id}/comments"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    let items = comments["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{comments}");
    assert_eq!(items[0]["text"], "first, by the stayer");
}

#[tokio::test]
async fn a_deleted_username_can_be_registered_again_as_a_new_user() {
    let app = spawn_app().await;
    let (old, token, _) = app.register("phoenix").await;
    let resp = app
        .delete_json("/v1/users/me", Some(&token), &json!({"password": PASSWORD}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (new, new_token, _) = app.register("phoenix").await;
    assert_ne!(new["id"], old["id"]);
    // The old token does not open the new account.
    assert_problem(
        app.get("/v1/users/me", Some(&token)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.me(&new_token).await["id"], new["id"]);
}
