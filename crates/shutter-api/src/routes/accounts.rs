//! `/v1/auth`, `/v1/users`, `/v1/limits`, `/v1/admin`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shutter_app::accounts::{ProfileChange, RegisterInput};

use crate::client_ip::ClientIp;
use crate::dto::*;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, AuthUser, PathId, RawJson};
use crate::AppState;

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = AuthResponse),
        (status = 400, description = "validation_failed / malformed_request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "username_taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let session = state
        .app
        .register(RegisterInput {
            username: req.username,
            password: req.password,
            display_name: req.display_name,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(AuthResponse::from(session))).into_response())
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthResponse),
        (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited (per IP and username)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let key = format!(
        "login:{}:{}",
        client.rate_key(),
        req.username.to_lowercase()
    );
    let per_minute = state.app.config().rate_limits.login_per_minute;
    let rate = crate::rate_limit::enforce(&state, "login_per_minute", &key, per_minute).await?;
    let result = state.app.login(&req.username, &req.password).await;
    let mut response = match result {
        Ok(session) => Json(AuthResponse::from(session)).into_response(),
        Err(err) => crate::error::ApiError::from(err).into_response(),
    };
    if let Some(rate) = rate {
        crate::rate_limit::set_headers(response.headers_mut(), &rate);
    }
    Ok(response)
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is used up", body = AuthResponse),
        (status = 401, description = "unauthenticated (unknown, expired or reused token: a reuse revokes the whole family)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    Ok(Json(state.app.refresh(&req.refresh_token).await?.into()))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "The session's refresh tokens no longer work")))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state.app.logout(&req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = UserDto),
        (status = 401, description = "unauthenticated / token_expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(AuthUser(who): AuthUser) -> Json<UserDto> {
    Json(who.user.into())
}

#[utoipa::path(patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, body = UserDto),
        (status = 400, description = "validation_failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(req): ApiJson<UpdateProfileRequest>,
) -> ApiResult<Json<UserDto>> {
    let change = ProfileChange {
        display_name: req.display_name,
        bio: req.bio,
    };
    Ok(Json(state.app.update_profile(&who, change).await?.into()))
}

#[utoipa::path(delete, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = Option<DeleteAccountRequest>,
    responses(
        (status = 204, description = "The account and everything it owns are gone"),
        (status = 401, description = "invalid_credentials: wrong password (or, for external accounts, a token older than 5 minutes)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    RawJson(body): RawJson,
) -> ApiResult<StatusCode> {
    let req: DeleteAccountRequest = crate::extract::parse_optional_json(&body)?.unwrap_or_default();
    state
        .app
        .delete_account(&who, req.password.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/limits", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's tier, its limits and current usage", body = LimitsResponse)))]
pub async fn limits(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> ApiResult<Json<LimitsResponse>> {
    Ok(Json(state.app.limits(&who).await?.into()))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDto),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn user_by_id(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(state.app.user(id).await?.into()))
}

#[utoipa::path(get, path = "/v1/users/by-username/{username}", tag = "users",
    params(("username" = String, Path, description = "Username (case-insensitive)")),
    responses(
        (status = 200, body = UserDto),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn user_by_username(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(state.app.user_by_username(&username).await?.into()))
}

#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = AdminUpdateUserRequest,
    responses(
        (status = 200, description = "Applies from the user's next request", body = UserDto),
        (status = 403, description = "forbidden: the caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_update_user(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<AdminUpdateUserRequest>,
) -> ApiResult<Json<UserDto>> {
    let user = state
        .app
        .admin_update_user(&who, id, req.tier.map(Into::into), req.role.map(Into::into))
        .await?;
    Ok(Json(user.into()))
}
