//! Operations endpoints (SPEC 5): health, readiness, metrics, the OpenAPI document and its page.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn healthz_is_200() {
    let app = spawn_app().await;
    let resp = app.get("/healthz", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "x-request-id").is_some());
}

#[tokio::test]
async fn readyz_is_200_with_checks() {
    let app = spawn_app().await;
    let resp = app.get("/readyz", None).await;
    let body = expect_status(resp, StatusCode::OK).await;
    let checks = &body["checks"];
    assert!(
        checks.is_object() || checks.is_array(),
        "checks of database and storage: {body}"
    );
    let text = checks.to_string().to_lowercase();
    assert!(text.contains("database") || text.contains("db"), "{body}");
    assert!(text.contains("storage"), "{body}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("measured").await;
    for _ in 0..3 {
        app.me(&token).await;
    }
    let ghost = uuid::Uuid::now_v7().to_string();
    let resp = app.get(&format!("/v1/posts/{ghost}"), None).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = header(&resp, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.unwrap();

    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let me_ok: Vec<&&str> = samples
        .iter()
        .filter(|l| l.contains("route=\"/v1/users/me\"") && l.contains("status=\"200\""))
        .collect();
    assert!(
        !me_ok.is_empty(),
        "a sample for GET /v1/users/me 200:\n{text}"
    );
    // A counter (or histogram count) that saw at least the three requests.
    assert!(
        me_ok.iter().any(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v >= 3.0)
        }),
        "a count of at least 3:\n{text}"
    );
    // A duration histogram.
    assert!(
        samples
            .iter()
            .any(|l| l.contains("_bucket{") && l.contains("route=\"/v1/users/me\"")),
        "a request duration histogram by route:\n{text}"
    );
    // Routes are templates: no raw ids as label values (bounded cardinality).
    assert!(!text.contains(&ghost), "raw ids in metrics:\n{text}");
    assert!(
        samples
            .iter()
            .any(|l| l.contains("status=\"404\"") && l.contains("/v1/posts/")),
        "the 404 is counted under its route template:\n{text}"
    );
    // Every route is counted, not only reads.
    assert!(
        samples
            .iter()
            .any(|l| l.contains("route=\"/v1/auth/register\"") && l.contains("status=\"201\"")),
        "{text}"
    );
}

/// Every `/v1` path of accounts, text posts and comments, with its methods.
const V1_OPERATIONS: &[(&str, &[&str])] = &[
    ("/v1/auth/register", &["post"]),
    ("/v1/auth/login", &["post"]),
    ("/v1/auth/refresh", &["post"]),
    ("/v1/auth/logout", &["post"]),
    ("/v1/users/me", &["get", "patch", "delete"]),
    ("/v1/users/{id}", &["get"]),
    ("/v1/users/by-username/{username}", &["get"]),
    ("/v1/users/{id}/posts", &["get"]),
    ("/v1/limits", &["get"]),
    ("/v1/admin/users/{id}", &["patch"]),
    ("/v1/posts", &["post"]),
    ("/v1/posts/{id}", &["get", "patch", "delete"]),
    ("/v1/posts/{id}/comments", &["get", "post"]),
    ("/v1/comments/{id}", &["delete"]),
];

#[tokio::test]
async fn openapi_3_1_covers_every_v1_operation() {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json", None).await;
    let doc = expect_status(resp, StatusCode::OK).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1"), "OpenAPI 3.1: {version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in V1_OPERATIONS {
        // Parameter names are the server's choice; compare with `{}` for any parameter.
        let wanted = normalise(path);
        let found = paths.iter().find(|(p, _)| normalise(p) == wanted);
        match found {
            None => missing.push(path.to_string()),
            Some((_, item)) => {
                for method in *methods {
                    if item.get(*method).is_none() {
                        missing.push(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from /openapi.json: {missing:?}"
    );
    // Schemas are documented too.
    let schemas = doc["components"]["schemas"].as_object();
    assert!(schemas.is_some_and(|s| !s.is_empty()), "components.schemas");
    // The error responses are problem+json documents.
    assert!(doc.to_string().contains("application/problem+json"));
}

fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn docs_is_an_html_page() {
    let app = spawn_app().await;
    let resp = app.get("/docs", None).await;
    let status = resp.status();
    let content_type = header(&resp, "content-type").unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(text.to_lowercase().contains("<html"), "{text}");
    assert!(
        text.to_lowercase().contains("openapi"),
        "the page shows the OpenAPI document"
    );
}

#[tokio::test]
async fn operations_endpoints_need_no_auth() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    let _: Value = app.get("/openapi.json", None).await.json().await.unwrap();
}
