//! Problem+json (RFC 9457) for every failure. The request id comes from the task-local set by
//! [`crate::middleware::observe`], so errors raised anywhere in a request carry it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shutter_app::ports::RateDecision;
use shutter_app::AppError;
use shutter_core::error::{FieldError, LimitDetail};
use shutter_core::ErrorCode;
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being served.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:shutter:error:<code>`
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable machine-readable code; clients branch on it.
    pub code: String,
    /// The same value as the `X-Request-Id` response header.
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<ProblemLimit>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemLimit {
    pub name: String,
    pub value: u64,
    pub actual: u64,
}

/// An error on its way to the client, with the rate-limit state to report if one applies.
#[derive(Debug)]
pub struct ApiError {
    /// Boxed: errors travel in `Result`s on every path and should stay small.
    pub error: Box<AppError>,
    pub rate: Option<RateDecision>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        AppError::new(code, detail).into()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError {
            error: Box::new(error),
            rate: None,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError { error, rate } = self;
        let error = *error;
        let request_id = current_request_id();
        if error.code == ErrorCode::Internal || error.code == ErrorCode::ServiceUnavailable {
            // Logged once, here at the boundary, with the cause chain; the client sees only
            // the code and the request id.
            let cause = error
                .cause
                .as_ref()
                .map(|c| format!("{c:#}"))
                .unwrap_or_default();
            tracing::error!(request_id = %request_id, code = error.code.as_str(), cause = %cause, "request failed");
        }
        let problem = Problem {
            type_: error.code.type_uri(),
            title: error.code.title().to_owned(),
            status: error.code.status(),
            detail: error.detail,
            code: error.code.as_str().to_owned(),
            request_id,
            errors: (!error.errors.is_empty())
                .then(|| error.errors.into_iter().map(field).collect()),
            limit: error.limit.map(limit),
        };
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = error.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(rate) = rate {
            crate::rate_limit::set_headers(headers, &rate);
        }
        response
    }
}

fn field(e: FieldError) -> ProblemField {
    ProblemField {
        field: e.field,
        message: e.message,
    }
}

fn limit(l: LimitDetail) -> ProblemLimit {
    ProblemLimit {
        name: l.name,
        value: l.value,
        actual: l.actual,
    }
}

/// A panicking handler becomes an `internal` problem instead of a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::from(AppError::internal(anyhow::anyhow!("handler panicked"))).into_response()
}
