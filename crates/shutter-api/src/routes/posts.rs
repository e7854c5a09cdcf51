//! `/v1/posts`, `/v1/users/{id}/posts`, `/v1/comments`.

use std::future::Future;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use shutter_app::accounts::Principal;
use shutter_app::idempotency::{request_fingerprint, IdempotentStart};
use shutter_app::posts::NewPostInput;

use crate::dto::*;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, ApiJson, AuthUser, MaybeAuthUser, PageQuery, PathId, RawJson};
use crate::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Runs a creating request under its `Idempotency-Key`, if it has one: a repeat with the same
/// body replays the stored response; the first run stores a successful response. A failed
/// first run releases the key, so the client may retry with it.
pub(crate) async fn idempotent<T, F, Fut>(
    state: &AppState,
    who: &Principal,
    request: (&Method, &Uri, &HeaderMap, &[u8]),
    run: F,
) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ApiResult<(StatusCode, T)>> + Send + 'static,
{
    let (method, uri, headers, body) = request;
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        let (status, value) = run().await?;
        return Ok((status, Json(value)).into_response());
    };
    let key = key.to_str().unwrap_or_default().to_owned();
    let fingerprint = request_fingerprint(method.as_str(), uri.path(), body);
    // Taking the key, the work and storing its outcome run on a task of their own: a client
    // that goes away mid-request cancels none of them, so the key never stays in flight over
    // work half done, and the client's retry replays what was committed.
    let app = state.app.clone();
    let user = who.id();
    let task = tokio::spawn(async move {
        let outcome: ApiResult<(StatusCode, String, bool)> = match app
            .idempotency_start(user, &key, fingerprint)
            .await?
        {
            IdempotentStart::Replay { status, body } => Ok((
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
                true,
            )),
            IdempotentStart::Proceed => match run().await {
                Ok((status, value)) => {
                    let json =
                        serde_json::to_string(&value).map_err(shutter_app::AppError::internal)?;
                    app.idempotency_finish(user, &key, status.as_u16(), &json)
                        .await?;
                    Ok((status, json, false))
                }
                Err(err) => {
                    if let Err(release) = app.idempotency_finish(user, &key, 500, "").await {
                        tracing::warn!(error = %release.detail, "could not release an idempotency key");
                    }
                    Err(err)
                }
            },
        };
        outcome
    });
    let (status, json, replayed) = task.await.map_err(shutter_app::AppError::internal)??;
    let mut response = (status, json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(post, path = "/v1/posts", tag = "posts", security(("bearer" = [])),
    request_body = CreatePostRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1..255 characters; a repeat within 24 h replays the first response")),
    responses(
        (status = 201, body = CreatePostResponse),
        (status = 400, description = "validation_failed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "quota_exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: the first request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: post photos must be JPEG, PNG or WebP", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "idempotency_key_reused", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited (posts per minute of the tier) / too_many_uploads", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_post(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> ApiResult<Response> {
    let per_minute = state
        .app
        .config()
        .tier_limits(who.user.tier)
        .posts_per_minute;
    let key = format!("posts:{}", who.id());
    let rate = crate::rate_limit::enforce(&state, "posts_per_minute", &key, per_minute).await?;
    let req: CreatePostRequest = parse_json(&body).map_err(|e| with_rate(e, rate))?;
    let input = NewPostInput {
        caption: req.caption,
        media: req
            .media
            .unwrap_or_default()
            .into_iter()
            .map(|m| shutter_app::files::NewFileInput {
                filename: m.filename,
                size: m.size,
                content_type: m.content_type,
                sha256: m.sha256,
                md5: m.md5,
                visibility: None,
                tags: Vec::new(),
            })
            .collect(),
        file_ids: req.file_ids.unwrap_or_default(),
    };
    let (app, author) = (state.app.clone(), who.clone());
    let result = idempotent(
        &state,
        &who,
        (&method, &uri, &headers, &body),
        move || async move {
            let created = app.create_post(&author, input).await?;
            let uploads = created.uploads.into_iter().map(Into::into).collect();
            Ok((
                StatusCode::CREATED,
                CreatePostResponse {
                    post: created.view.into(),
                    uploads,
                },
            ))
        },
    )
    .await;
    match result {
        Ok(mut response) => {
            if let Some(rate) = rate {
                crate::rate_limit::set_headers(response.headers_mut(), &rate);
            }
            Ok(response)
        }
        Err(err) => Err(with_rate(err, rate)),
    }
}

fn with_rate(mut err: ApiError, rate: Option<shutter_app::ports::RateDecision>) -> ApiError {
    if err.rate.is_none() {
        err.rate = rate;
    }
    err
}

#[utoipa::path(get, path = "/v1/posts/{id}", tag = "posts", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 200, body = PostDto),
        (status = 404, description = "not_found (also a post that is not published, for everyone but its author)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_post(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
) -> ApiResult<Json<PostDto>> {
    Ok(Json(state.app.post(id, who.as_ref()).await?.into()))
}

#[utoipa::path(patch, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Post id")),
    request_body = UpdatePostRequest,
    responses(
        (status = 200, body = PostDto),
        (status = 403, description = "forbidden: not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_post(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<UpdatePostRequest>,
) -> ApiResult<Json<PostDto>> {
    Ok(Json(
        state
            .app
            .update_caption(&who, id, &req.caption)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Post id")),
    responses(
        (status = 204, description = "Deleted with its comments"),
        (status = 403, description = "forbidden: neither the author nor an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_post(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.delete_post(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/{id}/posts", tag = "posts", security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "User id"),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "Newest first: published posts, and the owner's own pending or failed ones", body = PostPage),
        (status = 400, description = "validation_failed / invalid_cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn posts_of_user(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<PostPage>> {
    Ok(Json(
        state
            .app
            .posts_of_user(id, who.as_ref(), page)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/posts/{id}/comments", tag = "posts", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Post id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters; a repeat within 24 h replays the first response"),
    ),
    request_body = CreateCommentRequest,
    responses(
        (status = 201, body = CommentDto),
        (status = 400, description = "validation_failed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "idempotency_key_reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_comment(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(post_id): PathId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> ApiResult<Response> {
    let req: CreateCommentRequest = parse_json(&body)?;
    let (app, author) = (state.app.clone(), who.clone());
    idempotent(
        &state,
        &who,
        (&method, &uri, &headers, &body),
        move || async move {
            let comment = app.add_comment(&author, post_id, &req.text).await?;
            Ok((StatusCode::CREATED, CommentDto::from(comment)))
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/posts/{id}/comments", tag = "posts", security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "Post id"),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "Oldest first", body = CommentPage),
        (status = 400, description = "validation_failed / invalid_cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn comments(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<CommentPage>> {
    Ok(Json(
        state.app.comments(id, who.as_ref(), page).await?.into(),
    ))
}

#[utoipa::path(delete, path = "/v1/comments/{id}", tag = "posts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Comment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "forbidden: not the comment's author, the post's author or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_comment(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.delete_comment(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
