//! Shutter's HTTP edge. Handlers parse requests into use-case inputs, call one use case on
//! [`shutter_app::Shutter`] and render the result; every failure leaves as RFC 9457
//! problem+json through [`error::ApiError`].
//!
//! **Invariant:** no SQL, no storage calls and no rules about who may do what here; those
//! live in `shutter-app`.

pub mod client_ip;
pub mod docs;
pub mod dto;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod telemetry;
pub mod web;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use shutter_app::Shutter;

/// What every handler can reach. One shared allocation: the router clones the state for
/// every request (each middleware and each `State` extractor), and every clone of a field
/// held in its own `Arc` was an atomic increment and decrement on a counter that both cores
/// write (1.5 % of a profile's samples went to dropping the state's four).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct SharedState {
    pub app: Arc<Shutter>,
    pub metrics: PrometheusHandle,
    /// The generated OpenAPI document, completed once (see [`openapi`]).
    pub openapi: Arc<serde_json::Value>,
    /// `server.trusted_proxies`, parsed once.
    pub trusted_proxies: Arc<[shutter_core::config::IpRange]>,
}

/// The complete router: `/v1` under the per-IP rate limit, operations endpoints outside it.
pub fn router(app: Arc<Shutter>, metrics: PrometheusHandle) -> Router {
    let (v1, openapi) = v1_parts();
    let trusted_proxies = app.config().server.trusted_proxy_ranges().into();
    let web = web::router(app.config());
    let state = AppState(Arc::new(SharedState {
        app,
        metrics,
        openapi: Arc::new(openapi),
        trusted_proxies,
    }));
    let v1 = v1.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::per_ip_rate_limit,
    ));
    Router::new()
        .merge(v1)
        .merge(routes::ops::router())
        .merge(web)
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

/// The request parsers that are private to their handlers, reachable for the fuzz targets in
/// `fuzz/`. Not an API: each function only forwards to the parser the handler calls.
#[doc(hidden)]
pub mod fuzzing {
    use axum::http::HeaderMap;
    use shutter_app::uploads::ChunkChecksum;
    use shutter_app::AppError;

    /// tus `Upload-Metadata`, as `POST /v1/tus` parses it.
    pub fn tus_metadata(raw: &str) -> Result<Vec<(String, String)>, AppError> {
        crate::routes::tus::parse_metadata(raw)
    }

    /// tus `Upload-Checksum`, as `PATCH /v1/tus/{id}` parses it.
    pub fn tus_checksum(headers: &HeaderMap) -> Result<Option<ChunkChecksum>, AppError> {
        crate::routes::tus::parse_checksum(headers)
    }

    /// A tus number header (`Upload-Offset`, `Upload-Length`).
    pub fn tus_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, AppError> {
        crate::routes::tus::header_u64(headers, name)
    }

    /// Whether a tus request's `Content-Type` is `application/offset+octet-stream`.
    pub fn tus_offset_content_type(headers: &HeaderMap) -> bool {
        crate::routes::tus::offset_content_type(headers)
    }
}

/// The OpenAPI document alone (for tooling and tests).
pub fn openapi() -> serde_json::Value {
    v1_parts().1
}

/// The `/v1` routes and their document, completed with the conventions every operation shares.
fn v1_parts() -> (Router<AppState>, serde_json::Value) {
    let (v1, doc) = routes::v1().split_for_parts();
    (v1, openapi::complete(doc))
}
