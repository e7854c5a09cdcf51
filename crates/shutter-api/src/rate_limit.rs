//! Rate limits at the edge: which key and quota apply, and the `RateLimit-*` headers that
//! report them on every response of a limited route.

use axum::http::{HeaderMap, HeaderValue};
use shutter_app::ports::{Quota, RateDecision};
use shutter_app::AppError;
use shutter_core::ErrorCode;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn set_headers(headers: &mut HeaderMap, rate: &RateDecision) {
    headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_secs));
}

/// Counts one request under `key`. `Ok(None)` when rate limits are switched off; a refusal
/// is a `rate_limited` problem naming the limit. A limiter that fails lets the request
/// through: an outage of the limiter must not take the API down with it.
pub async fn enforce(
    state: &AppState,
    name: &str,
    key: &str,
    per_minute: u32,
) -> ApiResult<Option<RateDecision>> {
    if !state.app.config().rate_limits.enabled {
        return Ok(None);
    }
    let decision = match state
        .app
        .rate_limiter()
        .check(key, Quota { per_minute })
        .await
    {
        Ok(d) => d,
        Err(err) => {
            tracing::warn!(error = %err, limit = name, "rate limiter failed; request allowed");
            return Ok(None);
        }
    };
    if decision.allowed {
        return Ok(Some(decision));
    }
    let mut error = AppError::new(
        ErrorCode::RateLimited,
        format!(
            "rate limit {name} reached; retry in {} s",
            decision.retry_after_secs
        ),
    )
    .with_limit(name, u64::from(per_minute), u64::from(per_minute) + 1);
    error.retry_after = Some(decision.retry_after_secs);
    Err(ApiError {
        error: Box::new(error),
        rate: Some(decision),
    })
}
