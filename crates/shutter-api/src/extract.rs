//! Extractors that turn HTTP into use-case inputs, failing with our own problem codes rather
//! than axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use shutter_app::accounts::Principal;
use shutter_app::AppError;
use shutter_core::{Cursor, ErrorCode, Id, PageRequest};

use crate::error::ApiError;
use crate::AppState;

/// JSON request bodies larger than this are refused with `payload_too_large`.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body read whole (bounded by [`JSON_BODY_LIMIT`]) but not yet parsed, for
/// handlers that also need the raw bytes (idempotency fingerprints).
pub struct RawJson(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "request bodies must be application/json",
                ));
            }
        }
        if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
            let len: usize = len.to_str().ok().and_then(|l| l.parse().ok()).unwrap_or(0);
            if len > JSON_BODY_LIMIT {
                return Err(too_large());
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), JSON_BODY_LIMIT)
            .await
            .map_err(|_| too_large())?;
        Ok(RawJson(bytes))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("JSON bodies are limited to {JSON_BODY_LIMIT} bytes"),
    )
}

/// An optional body: none at all, or JSON `null`, is `None`; anything else is parsed as
/// [`parse_json`] parses it.
pub fn parse_optional_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, ApiError> {
    // No body at all, or JSON `null`; white space alone is not JSON and is refused.
    if bytes.is_empty() || bytes.trim_ascii() == b"null" {
        return Ok(None);
    }
    parse_json(bytes).map(Some)
}

#[cfg(test)]
mod optional_json_tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Body {}

    #[test]
    fn only_an_empty_body_or_null_is_absent() {
        assert!(matches!(parse_optional_json::<Body>(b""), Ok(None)));
        assert!(matches!(parse_optional_json::<Body>(b" null "), Ok(None)));
        assert!(matches!(parse_optional_json::<Body>(b"{}"), Ok(Some(_))));
        assert!(parse_optional_json::<Body>(b"\t").is_err());
        assert!(parse_optional_json::<Body>(b" ").is_err());
    }
}

/// Parses JSON: bytes that are not JSON are `malformed_request`; JSON of the wrong shape is
/// `validation_failed` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is a JSON object. serde would also fill a struct from an array,
    // field by field in order, so `[null, null]` would pass as `{}`: refuse other values.
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(_) => return Err(malformed()),
        Ok(_) if bytes.trim_ascii_start().first() != Some(&b'{') => {
            return Err(AppError::field("body", "must be a JSON object").into());
        }
        Ok(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let message = message
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                // A missing field is reported at its parent's path: name the field itself.
                let field = match (missing_field(&message), path.as_str()) {
                    (Some(name), ".") => name,
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, ".") => String::new(),
                    (None, _) => path,
                };
                ApiError::from(AppError::field(&field, &message))
            }
            _ => malformed(),
        }
    })?;
    // Trailing bytes after the value make the body invalid JSON as a whole.
    de.end().map_err(|_| malformed())?;
    Ok(value)
}

fn malformed() -> ApiError {
    ApiError::new(
        ErrorCode::MalformedRequest,
        "the request body is not valid JSON",
    )
}

/// serde reports a missing field at the parent's path; take the name from its message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// A parsed JSON body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The authenticated caller. Fails with 401 when there is no valid bearer token.
pub struct AuthUser(pub Principal);

/// The caller if a token was sent. A token that is sent but invalid is still a 401: treating
/// it as anonymous would hide the client's bug (and `Option<AuthUser>` would do exactly that).
pub struct MaybeAuthUser(pub Option<Principal>);

/// The bearer token of the `Authorization` header, if there is one. A header of another
/// scheme is a 401: it is a credential, just not one this API takes.
pub fn bearer(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "expected a Bearer token"))?;
        return Ok(Some(token.trim().to_owned()));
    }
    Ok(None)
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "authentication is required")
        })?;
        Ok(AuthUser(state.app.authenticate(&token).await?))
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        match bearer(&parts.headers)? {
            Some(token) => Ok(MaybeAuthUser(Some(state.app.authenticate(&token).await?))),
            None => Ok(MaybeAuthUser(None)),
        }
    }
}

/// An `{id}` path segment. Text that is not an id cannot name anything: `not_found`.
pub struct PathId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "not found"))?;
        raw.parse::<Id>()
            .map(PathId)
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "not found"))
    }
}

/// A parsed query string. A query that does not fit `T` (a repeated parameter, a value of the
/// wrong type) is `validation_failed` naming the parameter, like a JSON body of the wrong shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // serde names the parameter in backticks: "duplicate field `sig`".
                let field = message
                    .split('`')
                    .nth(1)
                    .filter(|f| !f.is_empty())
                    .unwrap_or("query");
                Err(AppError::field(field, message).into())
            }
        }
    }
}

#[derive(Deserialize)]
struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `?limit=` (1..100, default 20) and `?cursor=`.
pub struct PageQuery(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(params) = ApiQuery::<PageParams>::from_request_parts(parts, state).await?;
        let limit = match params.limit {
            None => PageRequest::DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(
                        AppError::field("limit", "must be a whole number from 1 to 100").into(),
                    )
                }
            },
        };
        let after = match params.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(Cursor::decode(text).map_err(|_| {
                ApiError::new(ErrorCode::InvalidCursor, "the cursor does not parse")
            })?),
        };
        Ok(PageQuery(PageRequest { limit, after }))
    }
}
