//! Operations endpoints (SPEC 5): health, readiness, metrics, the OpenAPI document and its page.

use reqwest::{Method, StatusCode};
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

const METHODS: [&str; 7] = ["get", "head", "options", "post", "put", "patch", "delete"];

/// Operations that act on something another user may own, or spend a quota: 403 is theirs.
const FORBIDDEN_POSSIBLE: &[(&str, &str)] = &[
    ("patch", "/v1/posts/{id}"),
    ("delete", "/v1/posts/{id}"),
    ("delete", "/v1/comments/{id}"),
    ("patch", "/v1/files/{id}"),
    ("delete", "/v1/files/{id}"),
    ("patch", "/v1/admin/users/{id}"),
    ("get", "/v1/files/{id}/content"),
    ("put", "/v1/files/{id}/content"),
    ("post", "/v1/posts"),
    ("post", "/v1/files"),
    ("post", "/v1/tus"),
];

fn documents_problem(op: &Value, status: u16) -> Result<(), String> {
    let response = &op["responses"][status.to_string()];
    if response.is_null() {
        return Err(format!("{status} is not documented"));
    }
    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
    if schema != "#/components/schemas/Problem" {
        return Err(format!(
            "{status} is not a problem+json Problem: {response}"
        ));
    }
    Ok(())
}

/// Walks every operation of `/openapi.json`: what its shape says it can answer (401 with a
/// bearer requirement, 400/413/415 with a JSON body, 400 with parameters, 404 with an `{id}`,
/// 403 where someone else's things or a quota are involved, 429/500/503 everywhere) is
/// documented as a problem+json `Problem`; then each route is called for real (anonymous,
/// signed in, with a body that is not JSON, with a body that is not JSON at all) and every
/// status it answers must be documented, error statuses as problem+json.
#[tokio::test]
async fn every_operation_documents_every_status_it_answers_as_problem_json() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("documented").await;
    let doc = expect_status(app.get("/openapi.json", None).await, StatusCode::OK).await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let mut wrong = Vec::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            let secured = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            });
            let json_body = op["requestBody"]["content"]
                .as_object()
                .is_some_and(|c| c.contains_key("application/json"));
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut expected = vec![500, 503];
            if path.starts_with("/v1/") {
                expected.push(429);
            }
            if secured {
                expected.push(401);
            }
            if path.contains('{') {
                expected.push(404);
            }
            if json_body {
                expected.extend([400, 413, 415]);
            }
            // (tus answers a wrong Tus-Resumable with its own 412.)
            if params
                .iter()
                .any(|p| p["in"] == "query" || p["in"] == "header" && p["name"] != "Tus-Resumable")
            {
                expected.push(400);
            }
            if FORBIDDEN_POSSIBLE.contains(&(method, path.as_str())) {
                expected.push(403);
            }
            for status in expected {
                if let Err(e) = documents_problem(op, status) {
                    wrong.push(format!("{name}: {e}"));
                }
            }
            for (status, _) in op["responses"].as_object().expect("responses") {
                let status: u16 = status.parse().expect("numeric status");
                if status >= 400 {
                    if let Err(e) = documents_problem(op, status) {
                        wrong.push(format!("{name}: {e}"));
                    }
                }
            }

            let concrete = path.replace("{id}", &ghost).replace("{username}", "nobody");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut probes = vec![
                ("anonymous", app.request(method.clone(), &concrete)),
                (
                    "signed in",
                    app.authed(method.clone(), &concrete, Some(&token)),
                ),
            ];
            if json_body {
                probes.push((
                    "a body that is not JSON",
                    app.authed(method.clone(), &concrete, Some(&token))
                        .header("Content-Type", "application/json")
                        .body("not json"),
                ));
                probes.push((
                    "a body of another type",
                    app.authed(method.clone(), &concrete, Some(&token))
                        .header("Content-Type", "text/plain")
                        .body("{}"),
                ));
            }
            for (probe, request) in probes {
                let resp = request.send().await.expect("the request is answered");
                let status = resp.status().as_u16();
                let content_type = header(&resp, "content-type").unwrap_or_default();
                if op["responses"][status.to_string()].is_null() {
                    wrong.push(format!(
                        "{name} ({probe}): answered an undocumented {status}"
                    ));
                } else if status >= 400
                    && method != Method::HEAD
                    && content_type != "application/problem+json"
                {
                    wrong.push(format!("{name} ({probe}): {status} as {content_type:?}"));
                }
            }
        }
    }
    assert!(operations >= 40, "only {operations} operations documented");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
