//! The scenarios (`scenario::all` lists them in the order they run) and what they share.

pub mod fanout;
pub mod like_storm;
pub mod media;
pub mod presign;
pub mod read_fixed_rate;
pub mod read_mix;
pub mod soak;
pub mod upload_large;
pub mod upload_small;
pub mod write_mix;

use crate::load::Report;
use crate::scenario::Figures;

/// The social users (their tokens and ids, in the same order) and the seeded posts, shared
/// by the requests a mix generates.
pub(crate) struct Social {
    pub tokens: std::sync::Arc<Vec<std::sync::Arc<str>>>,
    pub users: std::sync::Arc<Vec<String>>,
    pub posts: std::sync::Arc<Vec<String>>,
}

impl Social {
    pub fn of(ctx: &crate::scenario::Ctx) -> Self {
        Social {
            tokens: std::sync::Arc::new(ctx.tokens.clone()),
            users: std::sync::Arc::new(
                ctx.seeded.users[..ctx.seeded.social_users]
                    .iter()
                    .map(|u| u.id.clone())
                    .collect(),
            ),
            posts: std::sync::Arc::new(ctx.seeded.post_ids.clone()),
        }
    }
}

/// The figures every load run reports: `rps`, `p50_ms`, `p99_ms`, `p999_ms`, `max_ms`,
/// `requests`, `errors`, each name prefixed with `prefix`.
pub(crate) fn load_figures(f: &mut Figures, prefix: &str, r: &Report) {
    f.set(&format!("{prefix}rps"), r.rps(), 1);
    f.set(&format!("{prefix}p50_ms"), r.quantile_ms(0.50), 3);
    f.set(&format!("{prefix}p99_ms"), r.quantile_ms(0.99), 3);
    f.set(&format!("{prefix}p999_ms"), r.quantile_ms(0.999), 3);
    f.set(&format!("{prefix}max_ms"), r.all.max() as f64 / 1000.0, 3);
    f.count(&format!("{prefix}requests"), r.ok);
    f.count(&format!("{prefix}errors"), r.errors());
}

/// Prints a one-line summary of a load run to stderr (progress for the person waiting).
pub(crate) fn say(what: &str, r: &Report) {
    let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    eprintln!(
        "bench:   {what}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}{}",
        r.rps(),
        r.quantile_ms(0.5),
        r.quantile_ms(0.99),
        r.ok,
        r.errors(),
        if statuses.is_empty() { "" } else { " " },
        statuses.join(" ")
    );
}

/// An upload ticket: the file's id, the presigned URL and the headers to send with it.
pub(crate) struct Ticket {
    pub file_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// `POST /v1/files` as the user of `token`.
pub(crate) async fn create_file(
    ctx: &crate::scenario::Ctx,
    token: &str,
    filename: &str,
    size: u64,
    content_type: &str,
) -> anyhow::Result<Ticket> {
    let resp = ctx
        .http
        .post(format!("{}/v1/files", ctx.base_url))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "filename": filename,
            "size": size,
            "content_type": content_type,
        }))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        anyhow::bail!("POST /v1/files answered {status}: {body}");
    }
    let upload = &body["upload"];
    let (Some(file_id), Some(url)) = (upload["file_id"].as_str(), upload["url"].as_str()) else {
        anyhow::bail!("POST /v1/files answered without upload.file_id and upload.url: {body}");
    };
    let headers = upload["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(Ticket {
        file_id: file_id.to_owned(),
        url: url.to_owned(),
        headers,
    })
}

/// `PUT` of `body` to the ticket's URL (no Authorization: it is presigned); returns the
/// file as the server answered.
pub(crate) async fn put_content(
    ctx: &crate::scenario::Ctx,
    ticket: &Ticket,
    body: reqwest::Body,
) -> anyhow::Result<serde_json::Value> {
    let mut req = ctx.http.put(&ticket.url).body(body);
    for (k, v) in &ticket.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        anyhow::bail!("PUT of the upload answered {status}: {body}");
    }
    Ok(body)
}
