//! The web app's files: served at `/` and `/app/…` from the binary, under a strict
//! Content-Security-Policy, revalidated by ETag, and nothing outside the app's directory.

use reqwest::header;
use reqwest::StatusCode;

use crate::backend;
use crate::helpers::{spawn_app, spawn_app_with};

/// The `src` and `href` values of an HTML page that point into the app.
fn app_links(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            if let Some(end) = rest.find('"') {
                let link = &rest[..end];
                if link.starts_with("/app/") {
                    links.push(link.to_owned());
                }
            }
        }
    }
    links
}

#[tokio::test]
async fn the_index_page_and_everything_it_loads_are_served_under_a_strict_policy() {
    let app = spawn_app().await;

    let index = app.get("/", None).await;
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    if let Some(s3) = backend::s3_storage_for(app.data_dir.path()) {
        // A private photo's URL redirects to the bucket: the page may show images from it.
        assert!(s3.path_style, "the test bucket is addressed in path style");
        let endpoint = s3.endpoint.unwrap();
        let origin = endpoint.trim_end_matches('/');
        assert!(
            csp.contains(&format!("img-src 'self' data: blob: {origin};")),
            "{csp}"
        );
    } else {
        assert!(csp.contains("img-src 'self' data: blob:;"), "{csp}");
    }
    // Requests go to Shutter alone, whatever the store (uploads are tus through Shutter).
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    let html = index.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("style=\""), "no inline style");
    let links = app_links(&html);
    assert!(
        links.iter().any(|l| l.ends_with(".js")),
        "the page loads a script: {links:?}"
    );
    for link in links {
        let response = app.get(&link, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        if link.ends_with(".js") {
            assert_eq!(kind, "text/javascript; charset=utf-8", "{link}");
        } else if link.ends_with(".css") {
            assert_eq!(kind, "text/css; charset=utf-8", "{link}");
        }
        assert!(!response.bytes().await.unwrap().is_empty(), "{link}");
    }
}

#[tokio::test]
async fn an_unchanged_file_is_answered_304_and_unknown_paths_are_problems() {
    let app = spawn_app().await;
    let first = app.get("/", None).await;
    let etag = first.headers()[header::ETAG].clone();
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");

    let again = app
        .request(reqwest::Method::GET, "/")
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG], etag);

    let stale = app
        .request(reqwest::Method::GET, "/")
        .header(header::IF_NONE_MATCH, "\"0000000000000000-1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    // (`..` and `%2e%2e` segments are resolved by the client before sending; an encoded
    // slash reaches the handler, decoded into the path.)
    for path in [
        "/app/no-such-file.js",
        "/app/..%2fbuild.rs",
        "/app/..%2f..%2fCargo.toml",
        "/app/%2fetc%2fpasswd",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_web_dir_serves_its_own_files_and_nothing_above_it() {
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("web");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>mine</title>").unwrap();
    std::fs::write(dir.join("lib/app.js"), "export const mine = 1;").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let web_dir = dir.clone();
    let app = spawn_app_with(move |config| config.server.web_dir = Some(web_dir)).await;

    let index = app.get("/", None).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(
        index.text().await.unwrap(),
        "<!doctype html><title>mine</title>"
    );
    let script = app.get("/app/lib/app.js", None).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.text().await.unwrap(), "export const mine = 1;");

    // A file changed on disk is served changed, without a restart.
    std::fs::write(dir.join("lib/app.js"), "export const mine = 2;").unwrap();
    let script = app.get("/app/lib/app.js", None).await;
    assert_eq!(script.text().await.unwrap(), "export const mine = 2;");

    // An encoded slash reaches the handler as a slash: these paths are tried on the disk.
    let script = app.get("/app/lib%2fapp.js", None).await;
    assert_eq!(script.status(), StatusCode::OK);

    // Nothing above the directory, by `..`, by an absolute path, or by a symbolic link.
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("lib/link.txt"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("up")).unwrap();
    let absolute = format!(
        "/app/{}",
        outside
            .path()
            .join("secret.txt")
            .display()
            .to_string()
            .replace('/', "%2f")
    );
    for path in [
        "/app/.env",
        "/app/..%2fsecret.txt",
        "/app/lib%2f..%2f..%2fsecret.txt",
        absolute.as_str(),
        "/app/lib/link.txt",
        "/app/up/secret.txt",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_ne!(response.text().await.unwrap(), "secret", "{path}");
    }
}
