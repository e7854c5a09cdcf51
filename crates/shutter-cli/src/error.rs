//! What a command fails with and how that is reported. A failure from the server keeps its
//! RFC 9457 problem (and so its stable `code`); a failure on this side gets a code in the same
//! style (`not_logged_in`, `connection_failed`, `io_error`, `timeout`, …).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

pub type CliResult<T> = Result<T, CliError>;

/// The process exit code of a failed command: 1, or 2 for invalid arguments (as clap's own).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug)]
pub struct CliError {
    /// Stable, machine-readable: the server's `code`, or one of this client's.
    pub code: String,
    pub detail: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The server's problem body as it came.
    pub problem: Option<Value>,
    /// Invalid arguments: exit code 2.
    pub usage: bool,
    /// Already reported (a command that printed its own per-item errors): exit 1 quietly.
    pub reported: bool,
    /// How long the server asked to wait before trying again (`Retry-After` of a 429 or 503).
    pub retry_after: Option<Duration>,
}

impl CliError {
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        CliError {
            code: code.to_owned(),
            detail: detail.into(),
            status: None,
            problem: None,
            usage: false,
            reported: false,
            retry_after: None,
        }
    }

    /// A bad argument found before anything was sent (exit code 2).
    pub fn usage(detail: impl Into<String>) -> Self {
        CliError {
            usage: true,
            ..CliError::new("invalid_argument", detail)
        }
    }

    /// The command has printed what went wrong already; it only has to exit 1.
    pub fn reported(code: &str, detail: impl Into<String>) -> Self {
        CliError {
            reported: true,
            ..CliError::new(code, detail)
        }
    }

    pub fn io(what: &str, path: &Path, err: std::io::Error) -> Self {
        CliError::new("io_error", format!("{what} {}: {err}", path.display()))
    }

    /// An error answer of the server: its problem+json, or what the status says when the body
    /// is not one (a HEAD, a proxy's page).
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let problem: Option<Value> = serde_json::from_slice(body)
            .ok()
            .filter(|v: &Value| v.get("code").is_some_and(Value::is_string));
        match problem {
            Some(p) => {
                let code = p["code"].as_str().unwrap_or("internal").to_owned();
                let detail = p
                    .get("detail")
                    .and_then(Value::as_str)
                    .or_else(|| p.get("title").and_then(Value::as_str))
                    .unwrap_or("the server refused the request")
                    .to_owned();
                CliError {
                    status: Some(status),
                    problem: Some(p),
                    ..CliError::new(&code, detail)
                }
            }
            None => {
                let code = code_for_status(status);
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let detail = if text.is_empty() || text.len() > 200 {
                    format!("the server answered HTTP {status}")
                } else {
                    format!("the server answered HTTP {status}: {text}")
                };
                CliError {
                    status: Some(status),
                    ..CliError::new(code, detail)
                }
            }
        }
    }

    pub fn exit_code(&self) -> u8 {
        if self.usage {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        }
    }

    /// The machine-readable form printed with `--json`: the server's problem as it came, or
    /// an object of the same shape.
    pub fn to_json(&self) -> Value {
        match &self.problem {
            Some(p) => p.clone(),
            None => json!({
                "type": format!("urn:shutter:error:{}", self.code),
                "code": self.code,
                "detail": self.detail,
                "status": self.status,
            }),
        }
    }
}

/// A code for a status whose body is not a problem (a HEAD has none).
fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "validation_failed",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        410 => "upload_expired",
        413 => "file_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        503 => "service_unavailable",
        _ => "internal",
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.detail, self.code)
    }
}

impl std::error::Error for CliError {}

impl From<reqwest::Error> for CliError {
    fn from(err: reqwest::Error) -> Self {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        let code = if err.is_timeout() {
            "timeout"
        } else {
            "connection_failed"
        };
        CliError::new(code, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_keeps_its_code_and_detail() {
        let body = br#"{"type":"urn:shutter:error:not_found","title":"Not found","status":404,"detail":"file not found","code":"not_found","request_id":"r1"}"#;
        let err = CliError::from_response(404, body);
        assert_eq!(err.code, "not_found");
        assert_eq!(err.to_string(), "file not found (not_found)");
        assert_eq!(err.to_json()["request_id"], "r1");
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn a_body_that_is_no_problem_gets_a_code_from_the_status() {
        let err = CliError::from_response(410, b"");
        assert_eq!(err.code, "upload_expired");
        assert_eq!(err.to_json()["status"], 410);
        assert_eq!(CliError::usage("x").exit_code(), 2);
    }
}
