//! `/docs`: a self-contained HTML page rendered from the OpenAPI document, so it works with
//! no network access and no JavaScript.

use serde_json::Value;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render(doc: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let title = text(&doc["info"]["title"]);
    let mut out = String::new();
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    out.push_str(&esc(&title));
    out.push_str(" API</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}.m{font-weight:bold;font-family:monospace}</style></head><body>");
    out.push_str(&format!(
        "<h1>{} API <small>{}</small></h1>",
        esc(&title),
        esc(&text(&doc["info"]["version"]))
    ));
    if let Some(d) = doc["info"]["description"].as_str() {
        out.push_str(&format!("<p>{}</p>", esc(d)));
    }
    out.push_str("<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>");
    out.push_str(
        "<h2>Endpoints</h2><table><tr><th>Method</th><th>Path</th><th>Responses</th></tr>",
    );
    let empty = serde_json::Map::new();
    for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
        for method in ["get", "head", "options", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let responses: Vec<String> = op["responses"]
                .as_object()
                .unwrap_or(&empty)
                .iter()
                .map(|(status, r)| {
                    format!("<b>{}</b> {}", esc(status), esc(&text(&r["description"])))
                })
                .collect();
            let auth = match op["security"].as_array() {
                Some(reqs)
                    if reqs
                        .iter()
                        .any(|r| r.as_object().is_some_and(|r| r.is_empty())) =>
                {
                    " 🔓"
                }
                Some(reqs) if !reqs.is_empty() => " 🔒",
                _ => "",
            };
            out.push_str(&format!(
                "<tr><td class=\"m\">{}</td><td><code>{}</code>{auth}</td><td>{}</td></tr>",
                method.to_uppercase(),
                esc(path),
                responses.join("<br>")
            ));
        }
    }
    out.push_str("</table><h2>Schemas</h2><ul>");
    for name in doc["components"]["schemas"]
        .as_object()
        .unwrap_or(&empty)
        .keys()
    {
        out.push_str(&format!("<li><code>{}</code></li>", esc(name)));
    }
    out.push_str("</ul><p>🔒 needs <code>Authorization: Bearer &lt;access token&gt;</code>; 🔓 takes one optionally.</p></body></html>");
    out
}
