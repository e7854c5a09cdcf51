//! Follows, likes, the home feed and explore.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::dto::*;
use crate::error::{ApiResult, Problem};
use crate::extract::{AuthUser, MaybeAuthUser, PageQuery, PathId};
use crate::AppState;

/// Set on a home feed response that is the explore page standing in for it.
pub const FEED_FALLBACK_HEADER: &str = "x-feed-fallback";

#[utoipa::path(put, path = "/v1/users/{id}/follow", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User to follow")),
    responses(
        (status = 204, description = "Following (idempotent)"),
        (status = 400, description = "validation_failed: following yourself", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn follow(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.follow(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/users/{id}/follow", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User to unfollow")),
    responses(
        (status = 204, description = "Not following (idempotent)"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unfollow(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.unfollow(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/{id}/followers", tag = "social",
    params(
        ("id" = String, Path, description = "User id"),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Newest follow first", body = UserSummaryPage),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn followers(
    State(state): State<AppState>,
    PathId(id): PathId,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<UserSummaryPage>> {
    Ok(Json(state.app.followers(id, page).await?.into()))
}

#[utoipa::path(get, path = "/v1/users/{id}/following", tag = "social",
    params(
        ("id" = String, Path, description = "User id"),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Newest follow first", body = UserSummaryPage),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn following(
    State(state): State<AppState>,
    PathId(id): PathId,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<UserSummaryPage>> {
    Ok(Json(state.app.following(id, page).await?.into()))
}

#[utoipa::path(put, path = "/v1/posts/{id}/like", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 204, description = "Liked (idempotent); like_count is exact within a second"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn like(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.like(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/posts/{id}/like", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 204, description = "Not liked (idempotent)"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unlike(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.unlike(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/posts/{id}/likes", tag = "social", security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "Post id"),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Who liked the post, newest first", body = UserSummaryPage),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn likes(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<UserSummaryPage>> {
    Ok(Json(state.app.likers(id, who.as_ref(), page).await?.into()))
}

#[utoipa::path(get, path = "/v1/feed", tag = "social", security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Published posts of the people you follow and your own, newest first. With `X-Feed-Fallback: explore` when the feed could not be built and the explore page stands in.", body = PostPage),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn feed(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PageQuery(page): PageQuery,
) -> ApiResult<Response> {
    let feed = state.app.feed(&who, page).await?;
    let mut response = Json(PostPage::from(feed.page)).into_response();
    if feed.fallback {
        response
            .headers_mut()
            .insert(FEED_FALLBACK_HEADER, HeaderValue::from_static("explore"));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/explore", tag = "social", security((), ("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses((status = 200, description = "Recent published posts of everyone, newest first", body = PostPage)))]
pub async fn explore(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<PostPage>> {
    Ok(Json(state.app.explore(who.as_ref(), page).await?.into()))
}
