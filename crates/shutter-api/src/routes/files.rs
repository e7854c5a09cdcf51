//! `/v1/files`: create (with an upload ticket), list, read, change, delete, complete; and
//! `/v1/files/{id}/content`: the presigned upload (`PUT`) and downloads (`GET`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::Deserialize;
use shutter_app::files::{ContentAccess, NewFileInput};
use shutter_app::ports::{ByteStream, FileFilter};
use shutter_app::AppError;
use shutter_core::domain::{FileStatus, Visibility};
use shutter_core::{ErrorCode, Timestamp};

use super::posts::idempotent;
use crate::dto::*;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{
    parse_json, parse_optional_json, ApiJson, ApiQuery, AuthUser, MaybeAuthUser, PageQuery, PathId,
    RawJson,
};
use crate::AppState;

#[utoipa::path(post, path = "/v1/files", tag = "files", security(("bearer" = [])),
    request_body = CreateFileRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1..255 characters; a repeat within 24 h replays the first response")),
    responses(
        (status = 201, description = "The file (pending) and where to send its bytes", body = CreateFileResponse),
        (status = 400, description = "validation_failed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "quota_exceeded (with `limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large (with `limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_uploads (with `limit`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_file(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> ApiResult<Response> {
    let req: CreateFileRequest = parse_json(&body)?;
    let input = NewFileInput {
        filename: req.filename,
        size: req.size,
        content_type: req.content_type,
        sha256: req.sha256,
        md5: req.md5,
        visibility: req.visibility.map(Into::into),
        tags: req.tags.unwrap_or_default(),
    };
    let (app, owner) = (state.app.clone(), who.clone());
    idempotent(
        &state,
        &who,
        (&method, &uri, &headers, &body),
        move || async move {
            let (file, ticket) = app.create_file(&owner, input).await?;
            Ok((
                StatusCode::CREATED,
                CreateFileResponse {
                    file: file.into(),
                    upload: ticket.into(),
                },
            ))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct FileListQuery {
    visibility: Option<String>,
    tag: Option<String>,
    content_type: Option<String>,
    status: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
}

fn parse_filter(q: FileListQuery) -> Result<FileFilter, AppError> {
    let mut errors = Vec::new();
    let mut field =
        |name: &str, msg: &str| errors.push(shutter_core::error::FieldError::new(name, msg));
    let visibility = q.visibility.as_deref().and_then(|v| {
        Visibility::parse(v).or_else(|| {
            field("visibility", "must be private or public");
            None
        })
    });
    let status = q.status.as_deref().and_then(|v| {
        FileStatus::parse(v).or_else(|| {
            field(
                "status",
                "must be pending, uploading, processing, ready or failed",
            );
            None
        })
    });
    let mut time = |name: &str, v: Option<String>| {
        v.and_then(|t| {
            Timestamp::parse_rfc3339(&t).or_else(|| {
                field(name, "must be an RFC 3339 timestamp");
                None
            })
        })
    };
    let created_after = time("created_after", q.created_after);
    let created_before = time("created_before", q.created_before);
    // A tag that breaks the tag rule can name no file: say so rather than list nothing.
    let tag = q
        .tag
        .and_then(|t| match shutter_core::domain::Tag::parse("tag", &t) {
            Ok(tag) => Some(tag.to_string()),
            Err(e) => {
                errors.push(e);
                None
            }
        });
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(FileFilter {
        visibility,
        tag,
        content_type: q.content_type.map(|c| c.to_ascii_lowercase()),
        status,
        created_after,
        created_before,
    })
}

#[utoipa::path(get, path = "/v1/files", tag = "files", security(("bearer" = [])),
    params(
        ("visibility" = Option<String>, Query, description = "private | public", pattern = "^(private|public)$"),
        ("tag" = Option<String>, Query, description = "Files with this tag", pattern = "^[A-Za-z0-9_-]{1,50}$"),
        ("content_type" = Option<String>, Query, description = "exact, or a prefix form like image/*"),
        ("status" = Option<String>, Query, description = "pending | uploading | processing | ready | failed", pattern = "^(pending|uploading|processing|ready|failed)$"),
        ("created_after" = Option<String>, Query, description = "RFC 3339, exclusive", format = DateTime),
        ("created_before" = Option<String>, Query, description = "RFC 3339, exclusive", format = DateTime),
        ("limit" = Option<u32>, Query, description = "1..100, default 20"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "The caller's files, newest first", body = FilePage),
        (status = 400, description = "validation_failed / invalid_cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_files(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PageQuery(page): PageQuery,
    ApiQuery(q): ApiQuery<FileListQuery>,
) -> ApiResult<Json<FilePage>> {
    let filter = parse_filter(q)?;
    Ok(Json(state.app.files_of(&who, filter, page).await?.into()))
}

#[utoipa::path(get, path = "/v1/files/{id}", tag = "files", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 200, description = "The owner sees any state; others only a public, ready file", body = FileDto),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_file(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
) -> ApiResult<Json<FileDto>> {
    Ok(Json(state.app.file(id, who.as_ref()).await?.into()))
}

#[utoipa::path(patch, path = "/v1/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    request_body = UpdateFileRequest,
    responses(
        (status = 200, body = FileDto),
        (status = 403, description = "forbidden: someone else's public file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_file(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<UpdateFileRequest>,
) -> ApiResult<Json<FileDto>> {
    let view = state
        .app
        .update_file(
            &who,
            id,
            req.filename,
            req.visibility.map(Into::into),
            req.tags,
        )
        .await?;
    Ok(Json(view.into()))
}

#[utoipa::path(delete, path = "/v1/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 204, description = "The file, its bytes and its URLs are gone"),
        (status = 403, description = "forbidden: someone else's public file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: a post uses the file (delete the post instead)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_file(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.app.delete_file(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/files/{id}/complete", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    request_body = Option<CompleteUploadRequest>,
    responses(
        (status = 200, description = "The file, `processing` or `ready` once its bytes are checked. On S3 storage this checks and commits what the ticket's URLs uploaded (multipart: completed with `parts`, or with the parts the bucket lists); on the built-in store the upload completed with its last byte and this returns the file", body = FileResponse),
        (status = 409, description = "conflict: on S3 storage, the bytes have not all arrived yet", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "upload_expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large: more bytes arrived than declared", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "checksum_mismatch, content_mismatch, size_mismatch, image_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "service_unavailable: the object store does not answer", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: someone else's public file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn complete_upload(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    RawJson(body): RawJson,
) -> ApiResult<Json<FileResponse>> {
    let parts = match parse_optional_json::<CompleteUploadRequest>(&body)? {
        Some(request) => {
            request.validate()?;
            request
                .parts
                .map(|parts| parts.into_iter().map(|p| (p.number, p.etag)).collect())
        }
        None => None,
    };
    let view = state.app.complete_upload(&who, id, parts).await?;
    Ok(Json(FileResponse { file: view.into() }))
}

#[derive(Debug, Deserialize)]
pub struct ContentQuery {
    variant: Option<String>,
    expires: Option<String>,
    sig: Option<String>,
}

/// The body of a request as a stream of chunks, never held whole.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

#[utoipa::path(put, path = "/v1/files/{id}/content", tag = "files",
    params(
        ("id" = String, Path, description = "File id"),
        ("expires" = i64, Query, description = "From the upload ticket"),
        ("sig" = String, Query, description = "From the upload ticket"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "Exactly `size` bytes"),
    responses(
        (status = 200, description = "Stored and checked", body = FileResponse),
        (status = 403, description = "invalid_signature", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: already uploaded, or another upload is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "upload_expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large: more bytes than declared", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "size_mismatch / checksum_mismatch / content_mismatch / image_too_large", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_content(
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<ContentQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<FileResponse>> {
    let (Some(expires), Some(sig)) = (
        q.expires.as_deref().and_then(|e| e.parse::<i64>().ok()),
        q.sig.as_deref(),
    ) else {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            "the upload URL is not signed",
        ));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let file = state
        .app
        .upload_put(
            id,
            expires,
            sig,
            content_type,
            content_length,
            body_stream(body),
        )
        .await?;
    Ok(Json(FileResponse {
        file: state.app.file_view(file).into(),
    }))
}

const VARIANTS: [&str; 3] = ["thumb", "w640", "w1080"];

/// A `Range` header none of whose ranges overlaps the object: 416 with `Content-Range: bytes */size`.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses `Range: bytes=…` against the object's length (RFC 9110 14.1.2), with arithmetic
/// that cannot overflow. `Ok(Some((start, end)))` (end exclusive, clamped to the length) is a
/// single satisfiable range; `Ok(None)` serves the whole object: no header, a header whose
/// syntax we ignore as RFC 9110 allows, or several ranges (no multipart responses; the whole
/// representation is a valid answer). When no range overlaps the object: [`Unsatisfiable`].
pub fn parse_range(header: Option<&str>, total: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(set) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let mut satisfiable = Vec::new();
    let mut specs = 0;
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        specs += 1;
        let Some((first, last)) = spec.split_once('-') else {
            return Ok(None);
        };
        let (first, last) = (first.trim(), last.trim());
        let range = match (digits(first), digits(last)) {
            // `-N`: the last N bytes (all of them when N is larger than the object).
            (None, Some(n)) if first.is_empty() => {
                (n > 0 && total > 0).then(|| (total.saturating_sub(n), total))
            }
            // `A-`: from A to the end.
            (Some(a), None) if last.is_empty() => (a < total).then_some((a, total)),
            // `A-B`: B is clamped to the last byte; B < A is a syntax error.
            (Some(a), Some(b)) if b >= a => {
                (a < total).then(|| (a, b.saturating_add(1).min(total)))
            }
            _ => return Ok(None),
        };
        satisfiable.extend(range);
    }
    match satisfiable.as_slice() {
        [] if specs == 0 => Ok(None),
        [] => Err(Unsatisfiable),
        [one] => Ok(Some(*one)),
        _ => Ok(None),
    }
}

/// A run of ASCII digits as a number; more digits than a `u64` holds saturate (a position that
/// large is past the end of any object either way).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// Safe to show inline: images whose bytes were sniffed to match at upload. Everything else
/// (HTML, SVG, text) is an attachment, so a file can never run script on Shutter's origin.
fn inline_type(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    )
}

fn content_disposition(inline: bool, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[utoipa::path(get, path = "/v1/files/{id}/content", tag = "files", security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "File id"),
        ("variant" = Option<String>, Query, description = "thumb | w640 | w1080 (images)", pattern = "^(thumb|w640|w1080)$"),
        ("expires" = Option<i64>, Query, description = "From a signed URL"),
        ("sig" = Option<String>, Query, description = "From a signed URL"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=<first>-<last>`, `bytes=<first>-` or `bytes=-<suffix length>`; 206 with it, 416 outside the file"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client holds; 304 when it is current"),
    ),
    responses(
        (status = 200, description = "The bytes, served with the file's own content type", content_type = "*/*"),
        (status = 206, description = "The requested range", content_type = "*/*"),
        (status = 302, description = "On S3 storage, a private file's bytes: redirected to a presigned URL of the bucket (valid a few minutes), which serves them with the same Content-Type and Content-Disposition and answers Range and If-None-Match itself"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 403, description = "invalid_signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "url_expired", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "range_not_satisfiable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_content(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<ContentQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let variant = match q.variant.as_deref() {
        None | Some("") | Some("original") => None,
        Some(v) if VARIANTS.contains(&v) => Some(v),
        Some(_) => return Err(AppError::field("variant", "must be thumb, w640 or w1080").into()),
    };
    let access = match q.sig.as_deref() {
        Some(signature) => {
            let expires = match q.expires.as_deref() {
                None => None,
                Some(e) => Some(e.parse::<i64>().map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidSignature,
                        "the URL's signature does not match",
                    )
                })?),
            };
            ContentAccess::Signed { expires, signature }
        }
        None => ContentAccess::Caller(who.as_ref()),
    };
    let file = state.app.content_file(id, access, variant).await?;
    let etag = file
        .sha256
        .as_deref()
        .map(|sha| match variant {
            Some(v) => format!("\"{sha}-{v}\""),
            None => format!("\"{sha}\""),
        })
        .unwrap_or_default();
    let cache = match file.visibility {
        Visibility::Public => "public, max-age=3600",
        Visibility::Private => "private, max-age=0, must-revalidate",
    };
    let mut common = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            common.insert(name, v);
        }
    };
    put(header::ETAG, &etag);
    put(header::CACHE_CONTROL, cache);
    put(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    put(header::ACCEPT_RANGES, "bytes");
    let matches_etag = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim() == "*"
                || v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    if matches_etag && !etag.is_empty() {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let (content_type, inline) = match variant {
        Some(_) => ("image/jpeg".to_owned(), true),
        None => (file.content_type.clone(), inline_type(&file.content_type)),
    };
    let disposition = content_disposition(inline, &file.filename);
    if let Some(url) =
        state
            .app
            .transfers()
            .download_redirect(&file, variant, &content_type, &disposition)
    {
        // Private bytes on S3 come from the bucket itself, which answers Range and
        // If-None-Match with its own ETag.
        let mut response = (StatusCode::FOUND, common).into_response();
        let h = response.headers_mut();
        h.remove(header::ETAG);
        h.remove(header::ACCEPT_RANGES);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        if let Ok(location) = HeaderValue::from_str(&url) {
            h.insert(header::LOCATION, location);
        }
        return Ok(response);
    }
    let range = match variant {
        None => {
            let header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            match parse_range(header, file.size) {
                Ok(range) => range,
                Err(Unsatisfiable) => return Ok(unsatisfiable(file.size, common)),
            }
        }
        Some(_) => None,
    };
    let blob = state.app.open_content(&file, variant, range).await?;
    let mut response = Response::new(Body::from_stream(blob.stream));
    *response.headers_mut() = common;
    let h = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_DISPOSITION, disposition);
    match range {
        Some((start, end)) => {
            set(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{}", end - 1, blob.total_len),
            );
            set(header::CONTENT_LENGTH, (end - start).to_string());
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => set(header::CONTENT_LENGTH, blob.total_len.to_string()),
    }
    Ok(response)
}

/// 416 with the object's length in `Content-Range: bytes */<size>` (RFC 9110 15.5.17).
fn unsatisfiable(size: u64, common: HeaderMap) -> Response {
    let mut response = ApiError::new(
        ErrorCode::RangeNotSatisfiable,
        format!("the file has {size} bytes"),
    )
    .into_response();
    response.headers_mut().extend(common);
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(r("bytes=0-9"), Ok(Some((0, 10))));
        assert_eq!(r("bytes=90-"), Ok(Some((90, 100))));
        assert_eq!(r("bytes=-10"), Ok(Some((90, 100))));
        assert_eq!(r("bytes=-1000"), Ok(Some((0, 100))));
        assert_eq!(r("bytes=95-200"), Ok(Some((95, 100))));
        assert_eq!(r("bytes=0-18446744073709551615"), Ok(Some((0, 100))));
        assert_eq!(r("bytes=0-99999999999999999999999"), Ok(Some((0, 100))));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None));
        assert_eq!(r("bytes=0-1,500-600"), Ok(Some((0, 2))));
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(r("bytes=9-3"), Ok(None));
        assert_eq!(r("bytes=x-3"), Ok(None));
        assert_eq!(r("bytes=,"), Ok(None));
        assert_eq!(r("bytes=100-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=18446744073709551615-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=-0"), Err(Unsatisfiable));
        assert_eq!(r("bytes=200-300,400-500"), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-5"), 0), Err(Unsatisfiable));
    }

    #[test]
    fn dispositions_escape_names() {
        assert_eq!(
            content_disposition(true, "a b.jpg"),
            "inline; filename=\"a b.jpg\"; filename*=UTF-8''a%20b.jpg"
        );
        assert!(
            content_disposition(false, "é\"x.svg").starts_with("attachment; filename=\"__x.svg\"")
        );
    }
}
