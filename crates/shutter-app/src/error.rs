//! Errors of the use-case layer. Every error carries the stable [`ErrorCode`] the client sees;
//! internal causes are kept for the log and never shown to the client.

use shutter_core::error::{FieldError, LimitDetail};
use shutter_core::ErrorCode;

use crate::ports::RepoError;

pub type AppResult<T> = Result<T, AppError>;

/// A failed use case: the code and detail for the client, and for `internal` errors the cause
/// for the log.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct AppError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub limit: Option<LimitDetail>,
    /// Seconds a client should wait before trying again (`Retry-After`).
    pub retry_after: Option<u64>,
    #[source]
    pub cause: Option<anyhow::Error>,
}

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        AppError {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            limit: None,
            retry_after: None,
            cause: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Forbidden, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Unauthenticated, detail)
    }

    /// One or more fields broke their rules.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        AppError {
            errors,
            ..AppError::new(ErrorCode::ValidationFailed, detail)
        }
    }

    pub fn field(field: &str, message: &str) -> Self {
        AppError::validation(vec![FieldError::new(field, message)])
    }

    /// A bug or an unexpected failure: the client sees only `internal`.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError {
            cause: Some(cause.into()),
            ..AppError::new(ErrorCode::Internal, "internal error")
        }
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        AppError {
            cause: Some(cause.into()),
            retry_after: Some(1),
            ..AppError::new(ErrorCode::ServiceUnavailable, "a dependency is unavailable")
        }
    }

    pub fn with_limit(mut self, name: &str, value: u64, actual: u64) -> Self {
        self.limit = Some(LimitDetail {
            name: name.to_owned(),
            value,
            actual,
        });
        self
    }
}

impl From<RepoError> for AppError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Unavailable(cause) => AppError::unavailable(cause),
            RepoError::Conflict(what) => {
                AppError::new(ErrorCode::Conflict, format!("conflict: {what}"))
            }
            RepoError::Other(cause) => AppError::internal(cause),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(err: FieldError) -> Self {
        AppError::validation(vec![err])
    }
}
