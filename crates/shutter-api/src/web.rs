//! The web app: `web/index.html` at `/`, every other file of `web/` at `/app/<path>`. The files
//! are built into the binary (`build.rs`); `server.web_dir` serves a directory instead, read
//! at each request. The app is a client of the public API like any other, so this module
//! only hands out files, each under a Content-Security-Policy that lets the page talk to this
//! origin (and to the S3 bucket its URLs point at) and nowhere else.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shutter_core::config::{Config, S3StorageConfig, StorageBackend};
use shutter_core::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Where the files come from, and the headers every one of them carries.
struct WebApp {
    dir: Option<PathBuf>,
    csp: HeaderValue,
}

/// `GET /` and `GET /app/{*path}`.
pub fn router(config: &Config) -> Router<AppState> {
    let app = Arc::new(WebApp {
        dir: config.server.web_dir.clone(),
        csp: content_security_policy(config),
    });
    let index = Arc::clone(&app);
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| async move { index.serve("index.html", &headers).await }),
        )
        .route(
            "/app/{*path}",
            get(
                move |UrlPath(path): UrlPath<String>, headers: HeaderMap| async move {
                    app.serve(&path, &headers).await
                },
            ),
        )
}

impl WebApp {
    async fn serve(&self, path: &str, request: &HeaderMap) -> Response {
        let bytes = match self.read(path).await {
            Some(bytes) => bytes,
            None => {
                return ApiError::new(ErrorCode::NotFound, "no such file of the web app")
                    .into_response()
            }
        };
        let etag = etag(&bytes);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        // No hashed file names: the browser asks again each time and mostly gets a 304.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|tag| tag.trim() == etag || tag.trim() == "*")
            });
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, bytes).into_response()
    }

    /// The file's bytes, or `None` for a path that is not one of the app's files.
    async fn read(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        match &self.dir {
            None => WEB_ASSETS
                .iter()
                .find(|(name, _)| *name == path)
                .map(|(_, bytes)| Cow::Borrowed(*bytes)),
            Some(dir) => {
                let relative = Path::new(path);
                let plain = relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(name) if !name.to_string_lossy().starts_with('.')));
                if !plain {
                    return None;
                }
                // A symbolic link inside the directory must not lead out of it.
                let root = tokio::fs::canonicalize(dir).await.ok()?;
                let file = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
                if !file.starts_with(&root) {
                    return None;
                }
                tokio::fs::read(file).await.ok().map(Cow::Owned)
            }
        }
    }
}

/// A strong validator: FNV-1a over the bytes (the files are small, and it needs no key).
fn etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}-{}\"", bytes.len())
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Scripts, styles, fonts and requests to this origin only, no inline script or style, no
/// frames. Images may also come from the S3 bucket when the files live there: a private
/// photo's URL redirects to a presigned URL on it. (Uploads go through Shutter with tus on
/// every store, so the page never connects to the bucket.)
fn content_security_policy(config: &Config) -> HeaderValue {
    let bucket = match config.storage.backend {
        StorageBackend::S3 => bucket_origin(&config.storage.s3),
        StorageBackend::Local => None,
    };
    let extra = bucket
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob:{extra}; connect-src 'self'; media-src 'self' blob:; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
    })
}

/// The origin of the bucket's URLs: the endpoint itself in path style, `bucket.<host>` in
/// virtual-hosted style, AWS's regional endpoint when none is configured.
fn bucket_origin(s3: &S3StorageConfig) -> Option<String> {
    let bucket = s3.bucket.as_deref()?;
    let endpoint = match &s3.endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
        None => format!(
            "https://s3.{}.amazonaws.com",
            s3.region.as_deref().unwrap_or("us-east-1")
        ),
    };
    let (scheme, rest) = endpoint.split_once("://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == ';' || c == ',') {
        return None;
    }
    Some(if s3.path_style {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{bucket}.{host}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_origin_follows_the_url_style() {
        let mut s3 = S3StorageConfig {
            bucket: Some("photos".into()),
            endpoint: Some("http://127.0.0.1:9000/".into()),
            path_style: true,
            ..S3StorageConfig::default()
        };
        assert_eq!(bucket_origin(&s3).as_deref(), Some("http://127.0.0.1:9000"));
        s3.path_style = false;
        assert_eq!(
            bucket_origin(&s3).as_deref(),
            Some("http://photos.127.0.0.1:9000")
        );
        s3.endpoint = None;
        s3.region = Some("eu-west-1".into());
        assert_eq!(
            bucket_origin(&s3).as_deref(),
            Some("https://photos.s3.eu-west-1.amazonaws.com")
        );
    }

    #[test]
    fn the_index_page_is_built_in() {
        assert!(WEB_ASSETS.iter().any(|(name, _)| *name == "index.html"));
    }
}
