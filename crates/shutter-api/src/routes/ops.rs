//! Operations endpoints, outside `/v1` and never rate limited: health, readiness, metrics,
//! the OpenAPI document and its readable page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use shutter_core::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database and the storage answer (`degraded`, naming the check, when an
/// optional backend such as Redis or the read replica does not), else 503 with the failing
/// checks.
async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state.app.readiness().await;
    let ready = checks.iter().all(|c| !c.required || c.result.is_ok());
    let degraded = checks.iter().any(|c| c.result.is_err());
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|check| {
            let value = match check.result {
                Ok(()) => json!({"status": "ok"}),
                Err(e) => {
                    tracing::warn!(check = check.name, error = %e, "readiness check failed");
                    json!({"status": "error"})
                }
            };
            (check.name.to_owned(), value)
        })
        .collect();
    // An optional backend (Redis) failing leaves the node ready, degraded: taking every node
    // out of the load balancer for it would turn a degraded mode into an outage.
    let (status, word) = match (ready, degraded) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, true) => (StatusCode::OK, "degraded"),
        (true, false) => (StatusCode::OK, "ok"),
    };
    let mut response = (status, Json(json!({"status": word, "checks": body}))).into_response();
    if !ready {
        response.headers_mut().insert(header::RETRY_AFTER, 5.into());
    }
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi(State(state): State<AppState>) -> Response {
    Json(state.openapi.as_ref().clone()).into_response()
}

async fn docs(State(state): State<AppState>) -> Html<String> {
    Html(crate::docs::render(&state.openapi))
}

/// A known path asked with a method it does not serve: a problem document too (the router
/// adds the `Allow` header).
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed here; the Allow header lists what is"),
    )
}

/// Unknown paths get a problem document like every other error.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}
