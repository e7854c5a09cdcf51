//! Tiers and roles: the admin endpoint, the CLI, and changes that apply without a new token.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_non_admin_cannot_use_the_admin_endpoint() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("mallory").await;
    let (victim, _, _) = app.register("victim").await;
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{}", id_of(&victim)),
            Some(&token),
            &json!({"tier": "premium", "role": "admin"}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let me = app.me(&token).await;
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{}", id_of(&me)),
            Some(&token),
            &json!({"role": "admin"}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    // Nothing changed.
    let victim_now = expect_status(
        app.get(&format!("/v1/users/{}", id_of(&victim)), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(victim_now["tier"], "basic");
}

#[tokio::test]
async fn an_admin_made_by_the_cli_sets_tiers_that_apply_without_a_new_token() {
    let app = spawn_app().await;
    let (_, admin_token, _) = app.register("root").await;
    let (user, user_token, _) = app.register("customer").await;
    app.make_admin("root").await;

    // Before: basic.
    let limits = expect_status(
        app.get("/v1/limits", Some(&user_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limits["tier"], "basic");

    // The admin's existing token gains the role at once.
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{}", id_of(&user)),
            Some(&admin_token),
            &json!({"tier": "premium"}),
        )
        .await;
    let updated = expect_status(resp, StatusCode::OK).await;
    assert_eq!(updated["id"], user["id"]);
    assert_eq!(updated["tier"], "premium");
    assert_eq!(updated["username"], "customer");

    // The user's old token now sees the premium tier and its limits.
    let limits = expect_status(
        app.get("/v1/limits", Some(&user_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        limits,
        json!({
            "tier": "premium",
            "limits": {
                "max_file_size": 5_368_709_120u64,
                "max_concurrent_uploads": 50,
                "storage_quota": 1_099_511_627_776u64,
                "posts_per_minute": 60,
                "max_pixels": 100_000_000u64,
                "post_media_types": ["image/jpeg", "image/png", "image/webp"],
            },
            "usage": {"bytes_stored": 0, "uploads_open": 0},
        })
    );
    assert_eq!(app.me(&user_token).await["tier"], "premium");

    // And back.
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{}", id_of(&user)),
            Some(&admin_token),
            &json!({"tier": "basic"}),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
    let limits = expect_status(
        app.get("/v1/limits", Some(&user_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limits["tier"], "basic");
    assert_eq!(limits["limits"]["max_file_size"], 104_857_600u64);
}

#[tokio::test]
async fn roles_granted_and_revoked_by_an_admin_apply_at_once() {
    let app = spawn_app().await;
    let (_, root_token, _) = app.register("root").await;
    let (helper, helper_token, _) = app.register("helper").await;
    let (target, _, _) = app.register("target").await;
    app.make_admin("root").await;

    let path = format!("/v1/admin/users/{}", id_of(&helper));
    let resp = app
        .patch_json(&path, Some(&root_token), &json!({"role": "admin"}))
        .await;
    expect_status(resp, StatusCode::OK).await;

    // The new admin uses the endpoint with the token it already had.
    let target_path = format!("/v1/admin/users/{}", id_of(&target));
    let resp = app
        .patch_json(
            &target_path,
            Some(&helper_token),
            &json!({"tier": "premium"}),
        )
        .await;
    assert_eq!(expect_status(resp, StatusCode::OK).await["tier"], "premium");

    // Demoted: refused from the next request on.
    let resp = app
        .patch_json(&path, Some(&root_token), &json!({"role": "user"}))
        .await;
    expect_status(resp, StatusCode::OK).await;
    let resp = app
        .patch_json(&target_path, Some(&helper_token), &json!({"tier": "basic"}))
        .await;
    assert_problem(resp, 403, "forbidden").await;
}

#[tokio::test]
async fn the_admin_endpoint_validates_its_input() {
    let app = spawn_app().await;
    let (_, root_token, _) = app.register("root").await;
    let (user, _, _) = app.register("someone").await;
    app.make_admin("root").await;
    let path = format!("/v1/admin/users/{}", id_of(&user));

    let resp = app
        .patch_json(&path, Some(&root_token), &json!({"tier": "gold"}))
        .await;
    assert_invalid_field(resp, "tier").await;
    let resp = app
        .patch_json(&path, Some(&root_token), &json!({"role": "superuser"}))
        .await;
    assert_invalid_field(resp, "role").await;

    let ghost = uuid::Uuid::now_v7();
    let resp = app
        .patch_json(
            &format!("/v1/admin/users/{ghost}"),
            Some(&root_token),
            &json!({"tier": "premium"}),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;
    let resp = app
        .patch_json(
            "/v1/admin/users/not-a-uuid",
            Some(&root_token),
            &json!({"tier": "premium"}),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[tokio::test]
async fn an_admin_may_delete_other_peoples_posts_and_comments() {
    let app = spawn_app().await;
    let (_, root_token, _) = app.register("root").await;
    let (_, author_token, _) = app.register("author").await;
    app.make_admin("root").await;
    let post = app.create_post(&author_token, "moderate me").await;
    let other_post = app.create_post(&author_token, "keep me").await;
    let comment = app
        .create_comment(&author_token, &id_of(&other_post), "rude comment")
        .await;

    let resp = app
        .delete(
            &format!("/v1/comments/{}", id_of(&comment)),
            Some(&root_token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_post(&id_of(&other_post), None).await["comment_count"],
        0
    );

    let resp = app
        .delete(&format!("/v1/posts/{}", id_of(&post)), Some(&root_token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/v1/posts/{}", id_of(&post)), Some(&author_token))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_admin_may_not_edit_other_peoples_posts() {
    // PATCH is for the author only (SPEC 3: "PATCH /v1/posts/{id} (auth, author)").
    let app = spawn_app().await;
    let (_, root_token, _) = app.register("root").await;
    let (_, author_token, _) = app.register("author").await;
    app.make_admin("root").await;
    let post = app.create_post(&author_token, "original").await;
    let resp = app
        .patch_json(
            &format!("/v1/posts/{}", id_of(&post)),
            Some(&root_token),
            &json!({"caption": "rewritten"}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    assert_eq!(
        app.get_post(&id_of(&post), None).await["caption"],
        "original"
    );
}

#[tokio::test]
async fn cli_set_tier_applies_to_a_running_server_without_a_new_token() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("upgraded").await;
    app.set_tier_cli("upgraded", "premium").await;
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "premium");
    assert_eq!(limits["limits"]["posts_per_minute"], 60);
    // Usernames are case-insensitive on the CLI too.
    app.set_tier_cli("UPGRADED", "basic").await;
    let limits = expect_status(app.get("/v1/limits", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(limits["tier"], "basic");
}
