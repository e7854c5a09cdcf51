//! tus 1.0.0 (core, creation, creation-with-upload, expiration, checksum, termination) at
//! `/v1/tus`, so stock clients (tus-js-client, Uppy, tuspy) resume uploads unchanged.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use shutter_app::files::NewFileInput;
use shutter_app::uploads::{ChunkChecksum, PatchOutcome};
use shutter_app::AppError;
use shutter_core::domain::{FileStatus, Tier, Visibility};
use shutter_core::model::FileRecord;
use shutter_core::ErrorCode;

use super::files::body_stream;
use crate::error::{ApiError, Problem};
use crate::extract::{AuthUser, MaybeAuthUser, PathId};
use crate::AppState;

const TUS_VERSION: &str = "1.0.0";
const OFFSET_TYPE: &str = "application/offset+octet-stream";

fn tus_headers(headers: &mut HeaderMap) {
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// A tus response: it carries `Tus-Resumable` even when it fails.
pub struct Tus(Response);

impl IntoResponse for Tus {
    fn into_response(self) -> Response {
        let mut r = self.0;
        tus_headers(r.headers_mut());
        r
    }
}

fn tus_error(err: impl Into<ApiError>) -> Tus {
    Tus(err.into().into_response())
}

/// Requests other than OPTIONS must speak our tus version. (The error is the finished
/// response, as for every handler here; it is built once per failed request.)
#[allow(clippy::result_large_err)]
fn check_version(headers: &HeaderMap) -> Result<(), Tus> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        other => {
            let said = other.map_or_else(
                || "no Tus-Resumable header".to_owned(),
                |v| format!("Tus-Resumable: {v}"),
            );
            let mut r = ApiError::new(
                ErrorCode::UnsupportedTusVersion,
                format!("this server speaks tus {TUS_VERSION}; the request sent {said}"),
            )
            .into_response();
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Err(Tus(r))
        }
    }
}

fn http_date(ts: shutter_core::Timestamp) -> String {
    httpdate(ts.unix_seconds())
}

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn httpdate(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

fn upload_headers(headers: &mut HeaderMap, file: &FileRecord, offset: u64) {
    set(headers, "upload-offset", offset.to_string());
    set(headers, "upload-length", file.size.to_string());
    if file.status.is_open() {
        set(headers, "upload-expires", http_date(file.upload_expires_at));
    }
}

#[utoipa::path(options, path = "/v1/tus", tag = "uploads",
    responses((status = 204, description = "tus capabilities: Tus-Version, Tus-Extension, Tus-Max-Size (the caller's tier limit when a Bearer token is sent, else the largest), Tus-Checksum-Algorithm")))]
pub async fn options(State(state): State<AppState>, MaybeAuthUser(who): MaybeAuthUser) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    tus_headers(h);
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,creation-with-upload,expiration,checksum,termination"),
    );
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static("sha1,md5,sha256"),
    );
    let config = state.app.config();
    let max = match who {
        Some(who) => config.tier_limits(who.user.tier).max_file_size.bytes(),
        None => [Tier::Basic, Tier::Premium]
            .into_iter()
            .map(|tier| config.tier_limits(tier).max_file_size.bytes())
            .max()
            .unwrap_or_default(),
    };
    set(h, "tus-max-size", max.to_string());
    r
}

#[utoipa::path(options, path = "/v1/tus/{id}", tag = "uploads",
    params(("id" = String, Path, description = "File id")),
    responses((status = 204, description = "tus capabilities")))]
pub async fn options_upload(state: State<AppState>, who: MaybeAuthUser) -> Response {
    options(state, who).await
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
pub(crate) fn parse_metadata(raw: &str) -> Result<Vec<(String, String)>, AppError> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            let bytes = STANDARD
                .decode(value.trim())
                .map_err(|_| AppError::field("Upload-Metadata", "values must be base64"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| AppError::field("Upload-Metadata", "values must be UTF-8"))?;
            Ok((key.to_owned(), text))
        })
        .collect()
}

pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, AppError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| AppError::field(name, "must be a non-negative integer")),
    }
}

pub(crate) fn offset_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(OFFSET_TYPE)
        })
}

pub(crate) fn parse_checksum(headers: &HeaderMap) -> Result<Option<ChunkChecksum>, AppError> {
    let Some(raw) = headers.get("upload-checksum") else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or_default().trim();
    let (alg, digest) = raw.split_once(' ').ok_or_else(|| {
        AppError::field("Upload-Checksum", "expected `<algorithm> <base64 digest>`")
    })?;
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| AppError::field("Upload-Checksum", "the digest must be base64"))?;
    match alg.to_ascii_lowercase().as_str() {
        "sha1" => Ok(Some(ChunkChecksum::Sha1(digest))),
        "md5" => Ok(Some(ChunkChecksum::Md5(digest))),
        "sha256" => Ok(Some(ChunkChecksum::Sha256(digest))),
        _ => Err(AppError::field(
            "Upload-Checksum",
            "supported algorithms: sha1, md5, sha256",
        )),
    }
}

#[utoipa::path(post, path = "/v1/tus", tag = "uploads", security(("bearer" = [])),
    params(
        ("Upload-Length" = u64, Header, description = "Size of the whole file"),
        ("Upload-Metadata" = Option<String>, Header, description = "filename, content_type (or filetype), visibility, sha256 (hex), tags"),
    ),
    responses(
        (status = 201, description = "Created; Location is /v1/tus/{file_id}"),
        (status = 400, description = "validation_failed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "quota_exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_uploads", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Tus, Tus> {
    check_version(&headers)?;
    // Concatenation is not offered (see Tus-Extension): a partial upload would never be
    // joined and its file would linger.
    if headers.contains_key("upload-concat") {
        return Err(tus_error(AppError::field(
            "Upload-Concat",
            "concatenation is not supported; upload the whole file to one upload",
        )));
    }
    let length = header_u64(&headers, "upload-length")
        .map_err(tus_error)?
        .ok_or_else(|| {
            tus_error(AppError::field(
                "Upload-Length",
                "is required (deferred lengths are not supported)",
            ))
        })?;
    let metadata = match headers.get("upload-metadata").and_then(|v| v.to_str().ok()) {
        Some(raw) => parse_metadata(raw).map_err(tus_error)?,
        None => Vec::new(),
    };
    let get = |keys: &[&str]| {
        metadata
            .iter()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    };
    let visibility = match get(&["visibility"]) {
        None => None,
        Some(v) => Some(Visibility::parse(&v).ok_or_else(|| {
            tus_error(AppError::field(
                "Upload-Metadata.visibility",
                "must be private or public",
            ))
        })?),
    };
    let input = NewFileInput {
        filename: get(&["filename", "name"]).unwrap_or_else(|| "upload".to_owned()),
        size: length,
        content_type: get(&["content_type", "filetype", "contentType", "type"])
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        sha256: get(&["sha256"]),
        md5: get(&["md5"]),
        visibility,
        tags: get(&["tags"])
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let file = state.app.tus_create(&who, input).await.map_err(tus_error)?;
    let location = state.app.transfers().tus_url(file.id);
    let mut offset = 0;
    let mut current = file.clone();
    // creation-with-upload: the creating request may carry the first bytes.
    if offset_content_type(&headers) {
        let checksum = parse_checksum(&headers).map_err(tus_error)?;
        match state
            .app
            .tus_patch(&who, file.id, 0, checksum, body_stream(body))
            .await
        {
            Ok(PatchOutcome::Accepted { offset: o, file: f }) => {
                offset = o;
                current = *f;
            }
            Ok(PatchOutcome::ChecksumMismatch { .. }) => {}
            Err(e) => return Err(tus_error(e)),
        }
    }
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    set(h, "location", location);
    upload_headers(h, &current, offset);
    Ok(Tus(r))
}

#[utoipa::path(head, path = "/v1/tus/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 200, description = "Upload-Offset and Upload-Length of the upload"),
        (status = 404, description = "not_found (or failed)"),
        (status = 410, description = "upload_expired"),
    ))]
pub async fn head(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Tus, Tus> {
    check_version(&headers)?;
    let file = state.app.tus_head(&who, id).await.map_err(tus_error)?;
    if file.status == FileStatus::Failed {
        return Err(tus_error(ApiError::new(
            ErrorCode::NotFound,
            "the upload failed",
        )));
    }
    let offset = if file.status.is_open() {
        file.bytes_received
    } else {
        file.size
    };
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    upload_headers(h, &file, offset);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Tus(r))
}

#[utoipa::path(patch, path = "/v1/tus/{id}", tag = "uploads", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "File id"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start; must equal the current offset"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1|md5|sha256 <base64 digest>` of this request's bytes", pattern = "^([Ss][Hh][Aa]1|[Mm][Dd]5|[Ss][Hh][Aa]256) ([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended; Upload-Offset is the new offset"),
        (status = 409, description = "conflict: the offset does not match, or another request is uploading", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "upload_expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "file_too_large: past Upload-Length", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: not application/offset+octet-stream", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "checksum_mismatch / content_mismatch / image_too_large when the last byte arrives", body = Problem, content_type = "application/problem+json"),
        (status = 460, description = "Upload-Checksum mismatch: this request's bytes were dropped", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Tus, Tus> {
    check_version(&headers)?;
    if !offset_content_type(&headers) {
        return Err(tus_error(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "PATCH bodies must be application/offset+octet-stream",
        )));
    }
    let offset = header_u64(&headers, "upload-offset")
        .map_err(tus_error)?
        .ok_or_else(|| tus_error(AppError::field("Upload-Offset", "is required")))?;
    let checksum = parse_checksum(&headers).map_err(tus_error)?;
    match state
        .app
        .tus_patch(&who, id, offset, checksum, body_stream(body))
        .await
    {
        Ok(PatchOutcome::Accepted { offset, file }) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            upload_headers(r.headers_mut(), &file, offset);
            Ok(Tus(r))
        }
        Ok(PatchOutcome::ChecksumMismatch { offset }) => {
            let mut r = ApiError::new(
                ErrorCode::ChecksumMismatch,
                "Upload-Checksum does not match this request's bytes; they were dropped",
            )
            .into_response();
            *r.status_mut() = StatusCode::from_u16(460).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            set(r.headers_mut(), "upload-offset", offset.to_string());
            Ok(Tus(r))
        }
        Err(e) => Err(tus_error(e)),
    }
}

#[utoipa::path(delete, path = "/v1/tus/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 204, description = "Terminated: the upload and its file are gone"),
        (status = 404, description = "not_found"),
        (status = 409, description = "conflict: a post uses the finished file (delete the post instead)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn terminate(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Tus, Tus> {
    check_version(&headers)?;
    state.app.tus_terminate(&who, id).await.map_err(tus_error)?;
    Ok(Tus(StatusCode::NO_CONTENT.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(httpdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn metadata_pairs_decode() {
        let m = parse_metadata("filename d29ybGQucG5n,is_confidential").ok();
        assert_eq!(
            m,
            Some(vec![
                ("filename".into(), "world.png".into()),
                ("is_confidential".into(), String::new())
            ])
        );
        assert!(parse_metadata("filename !!!").is_err());
    }
}
