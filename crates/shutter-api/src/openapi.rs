//! The conventions every `/v1` operation shares (SPEC 1), written into the generated OpenAPI
//! document so a generic client or fuzzer needs nothing else: the error statuses each kind of
//! operation can answer with (all as problem+json `Problem`), the page parameters' bounds, the
//! headers every response carries, and tus' `Tus-Resumable`.
//!
//! Handlers document what is particular to them where they are defined (`#[utoipa::path]`);
//! this adds what follows from the shape of an operation: a bearer requirement can answer 401,
//! a JSON body 400/413/415, an `{id}` 404, and everything 429, 500 and 503.

use serde_json::{json, Value};
use shutter_core::ErrorCode;
use utoipa::openapi::OpenApi;

const PROBLEM_JSON: &str = "application/problem+json";
const METHODS: [&str; 7] = ["get", "head", "options", "post", "put", "patch", "delete"];

/// The document as served, with every operation's shared statuses, parameters and headers
/// filled in. JSON, because utoipa's types cannot hold all of it (header references, `const`).
pub fn complete(doc: OpenApi) -> Value {
    let mut value = match serde_json::to_value(&doc) {
        Ok(value) => value,
        Err(err) => {
            tracing::error!(error = %err, "the OpenAPI document does not serialize");
            return Value::Null;
        }
    };
    apply(&mut value);
    value
}

fn apply(doc: &mut Value) {
    add_components(doc);
    constrain_items(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                complete_operation(path, method, op);
            }
        }
    }
}

fn add_components(doc: &mut Value) {
    let headers = &mut doc["components"]["headers"];
    let id_chars = "^[A-Za-z0-9._-]{1,128}$";
    headers["X-Request-Id"] = json!({"description": "The request's id (echoed when the client sent a sane one); a problem body's request_id is the same value",
               "required": true, "schema": {"type": "string", "pattern": id_chars}});
    for (name, description) in [
        (
            "RateLimit-Limit",
            "Requests allowed per window (when rate limits are on)",
        ),
        ("RateLimit-Remaining", "Requests left in the window"),
        ("RateLimit-Reset", "Seconds until the window resets"),
    ] {
        headers[name] =
            json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    }
    headers["Retry-After"] = json!({"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}});
    headers["Tus-Resumable"] = json!({"description": "The tus protocol version", "required": true, "schema": {"type": "string", "const": "1.0.0"}});
}

/// What an operation's shape says it can answer, beyond what its handler documents.
fn complete_operation(path: &str, method: &str, op: &mut Value) {
    let v1 = path.starts_with("/v1/");
    let tus = path.starts_with("/v1/tus");
    let authenticated = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    let json_body = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
        .is_some_and(|c| c.keys().any(|k| k.ends_with("json")));
    let params: Vec<Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_path_param = params.iter().any(|p| p["in"] == "path");
    let has_query_or_header = params
        .iter()
        .any(|p| p["in"] == "query" || p["in"] == "header");

    if tus && method != "options" {
        add_tus_resumable(op);
    }
    // Raw bodies are bytes, not the array of integers a `Vec<u8>` stands for.
    if let Some(content) = op
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        for (media_type, body) in content.iter_mut() {
            if media_type.ends_with("octet-stream") {
                body["schema"] = json!({"type": "string", "format": "binary"});
            }
        }
    }
    shape_parameters(op);

    let mut statuses: Vec<(u16, &[ErrorCode])> = Vec::new();
    if json_body {
        statuses.push((
            400,
            &[ErrorCode::MalformedRequest, ErrorCode::ValidationFailed],
        ));
        statuses.push((413, &[ErrorCode::PayloadTooLarge]));
        statuses.push((415, &[ErrorCode::UnsupportedMediaType]));
    }
    if has_query_or_header {
        statuses.push((400, &[ErrorCode::ValidationFailed]));
    }
    if params.iter().any(|p| p["name"] == "Idempotency-Key") {
        statuses.push((409, &[ErrorCode::Conflict]));
        statuses.push((422, &[ErrorCode::IdempotencyKeyReused]));
    }
    if params.iter().any(|p| p["name"] == "cursor") {
        statuses.push((400, &[ErrorCode::InvalidCursor]));
    }
    if authenticated {
        statuses.push((401, &[ErrorCode::Unauthenticated, ErrorCode::TokenExpired]));
    }
    if has_path_param {
        statuses.push((404, &[ErrorCode::NotFound]));
    }
    if v1 {
        statuses.push((429, &[ErrorCode::RateLimited]));
    }
    statuses.push((500, &[ErrorCode::Internal]));
    statuses.push((503, &[ErrorCode::ServiceUnavailable]));

    let responses = &mut op["responses"];
    for (status, codes) in statuses {
        let entry = &mut responses[status.to_string().as_str()];
        if entry.is_null() {
            *entry = json!({"description": ""});
        }
        let description = entry["description"].as_str().unwrap_or_default().to_owned();
        let missing: Vec<&str> = codes
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !description.contains(c))
            .collect();
        if !missing.is_empty() {
            entry["description"] = Value::String(if description.is_empty() {
                missing.join(" / ")
            } else {
                format!("{description} / {}", missing.join(" / "))
            });
        }
    }
    for (status, response) in responses.as_object_mut().into_iter().flatten() {
        complete_response(status, response, v1, tus);
        describe_event_stream(response);
    }
}

/// Error responses are problem+json `Problem`s; every response names the headers it carries.
fn complete_response(status: &str, response: &mut Value, v1: bool, tus: bool) {
    let code: u16 = status.parse().unwrap_or(0);
    if code >= 400 {
        let content = &mut response["content"];
        if let Some(content) = content.as_object_mut() {
            content.retain(|k, _| k == PROBLEM_JSON);
        }
        content[PROBLEM_JSON] = json!({"schema": {"$ref": "#/components/schemas/Problem"}});
    }
    let headers = &mut response["headers"];
    let mut refer = |name: &str| {
        let header = &mut headers[name];
        if header.is_null() {
            *header = json!({"$ref": format!("#/components/headers/{name}")});
        }
    };
    if code != 101 {
        refer("X-Request-Id");
    }
    if v1 {
        refer("RateLimit-Limit");
        refer("RateLimit-Remaining");
        refer("RateLimit-Reset");
    }
    if code == 429 || code == 503 {
        refer("Retry-After");
    }
    if tus && code < 400 && code != 0 {
        refer("Tus-Resumable");
    }
}

/// Parameters are never null; `limit` is 1..100 (default 20) and `Idempotency-Key` 1..255
/// characters wherever they appear.
fn shape_parameters(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for p in params.iter_mut() {
        // A header or query value is text or absent, never JSON null.
        if let Some(types) = p["schema"]["type"].as_array_mut() {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                p["schema"]["type"] = only.clone();
            }
        }
        if p["in"] == "query" && p["name"] == "limit" {
            p["schema"] = json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20});
        }
        if p["in"] == "header" && p["name"] == "Idempotency-Key" {
            p["schema"] = json!({"type": "string", "minLength": 1, "maxLength": 255});
        }
    }
}

/// Every tus request but `OPTIONS` must say `Tus-Resumable: 1.0.0` (else 412).
fn add_tus_resumable(op: &mut Value) {
    if op["parameters"].is_null() {
        op["parameters"] = json!([]);
    }
    let params = op["parameters"].as_array_mut();
    if let Some(params) = params.filter(|p| !p.iter().any(|p| p["name"] == "Tus-Resumable")) {
        params.push(json!({
            "name": "Tus-Resumable", "in": "header", "required": true,
            "description": "The tus protocol version the client speaks; anything else is 412",
            "schema": {"type": "string", "const": "1.0.0"}
        }));
    }
    let precondition = &mut op["responses"]["412"];
    if precondition.is_null() {
        *precondition = json!({"description": "Tus-Resumable is missing or names a version other than 1.0.0; Tus-Version lists the supported one",
               "headers": {"Tus-Version": {"schema": {"type": "string"}}}});
    }
}

/// Rules field attributes cannot express: each file tag is 1..50 of `[a-z0-9_-]` (lowercased
/// first), and a declared size is any u64 (larger than a tier allows is 413, not 400).
fn constrain_items(doc: &mut Value) {
    for schema in ["CreateFileRequest", "MediaSpec"] {
        if let Some(size) =
            doc.pointer_mut(&format!("/components/schemas/{schema}/properties/size"))
        {
            *size = json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "Exact size in bytes"});
        }
    }
    for schema in ["CreateFileRequest", "UpdateFileRequest"] {
        if let Some(items) = doc.pointer_mut(&format!(
            "/components/schemas/{schema}/properties/tags/items"
        )) {
            *items = json!({"type": "string", "minLength": 1, "maxLength": 50, "pattern": "^[A-Za-z0-9_-]{1,50}$"});
        }
    }
}

/// An event stream's schema describes each Server-Sent Event: its `event` name and its `data`,
/// a JSON document of the schema the handler names.
fn describe_event_stream(response: &mut Value) {
    let Some(stream) = response.pointer_mut("/content/text~1event-stream") else {
        return;
    };
    let payload = stream["schema"].take();
    stream["schema"] = json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": payload},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0}
        }
    });
}
