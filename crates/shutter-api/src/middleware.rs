//! Middleware: request ids, the access log and request metrics, and the per-IP rate limit.

use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::client_ip::ClientIp;
use crate::error::REQUEST_ID;
use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A client's request id is kept when it is 1..128 of `[A-Za-z0-9._-]`; otherwise a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
}

/// Gives the request its id (task-local, response header, log span), then logs one line and
/// records the request in the metrics by route and status.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    // Decided once here (for the log line) and kept in the extensions for the rate limits.
    let (mut parts, body) = req.into_parts();
    let Ok(client) = ClientIp::from_request_parts(&mut parts, &state).await;
    let req = Request::from_parts(parts, body);
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route, client_ip = %client.0);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    // The line carries the span's fields itself, outside the span: the JSON formatter reads
    // a span's fields back by parsing the text it stored them as, for every line it writes
    // in it. Lines logged while the request runs keep the span.
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        client_ip = %client.0,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request served"
    );
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response
}

/// The overall per-IP limit on every `/v1` route. Routes with a limit of their own (login,
/// posting) report that one in the headers; the others report this one.
pub async fn per_ip_rate_limit(
    State(state): State<AppState>,
    client: ClientIp,
    req: Request,
    next: Next,
) -> Response {
    let per_minute = state.app.config().rate_limits.per_ip_per_minute;
    let key = format!("ip:{}", client.rate_key());
    match crate::rate_limit::enforce(&state, "per_ip_per_minute", &key, per_minute).await {
        Ok(decision) => {
            let mut response = next.run(req).await;
            if let Some(decision) = decision {
                if !response.headers().contains_key("ratelimit-limit") {
                    crate::rate_limit::set_headers(response.headers_mut(), &decision);
                }
            }
            response
        }
        Err(err) => err.into_response(),
    }
}
