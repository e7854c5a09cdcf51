//! `/docs`: a self-contained HTML page rendered from the OpenAPI document, so it works with
//! no network access and no JavaScript.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render(doc: &OpenApi) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    out.push_str(&esc(&doc.info.title));
    out.push_str(" API</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}.m{font-weight:bold;font-family:monospace}</style></head><body>");
    out.push_str(&format!(
        "<h1>{} API <small>{}</small></h1>",
        esc(&doc.info.title),
        esc(&doc.info.version)
    ));
    if let Some(d) = &doc.info.description {
        out.push_str(&format!("<p>{}</p>", esc(d)));
    }
    out.push_str("<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>");
    out.push_str(
        "<h2>Endpoints</h2><table><tr><th>Method</th><th>Path</th><th>Responses</th></tr>",
    );
    for (path, item) in &doc.paths.paths {
        let ops: [(&str, &Option<Operation>); 7] = [
            ("GET", &item.get),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let responses: Vec<String> = op
                .responses
                .responses
                .iter()
                .map(|(status, r)| match r {
                    RefOr::T(r) => format!("<b>{}</b> {}", esc(status), esc(&r.description)),
                    RefOr::Ref(r) => format!("<b>{}</b> {}", esc(status), esc(&r.ref_location)),
                })
                .collect();
            let auth = if op.security.is_some() { " 🔒" } else { "" };
            out.push_str(&format!(
                "<tr><td class=\"m\">{method}</td><td><code>{}</code>{auth}</td><td>{}</td></tr>",
                esc(path),
                responses.join("<br>")
            ));
        }
    }
    out.push_str("</table><h2>Schemas</h2><ul>");
    if let Some(components) = &doc.components {
        for name in components.schemas.keys() {
            out.push_str(&format!("<li><code>{}</code></li>", esc(name)));
        }
    }
    out.push_str("</ul><p>🔒 needs <code>Authorization: Bearer &lt;access token&gt;</code>.</p></body></html>");
    out
}
