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

/// An upload ticket: the file's id, the presigned URL and the headers to send with it, and
/// on S3 for large files the multipart upload to do instead.
pub(crate) struct Ticket {
    pub file_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The URL is the bucket's, not Shutter's: the `PUT` is followed by `complete`.
    pub direct: bool,
    pub multipart: Option<MultipartTicket>,
}

/// `upload.multipart` of a ticket.
pub(crate) struct MultipartTicket {
    pub part_size: u64,
    /// `(number, presigned PUT url)`.
    pub parts: Vec<(u32, String)>,
    pub complete_url: String,
}

impl Ticket {
    /// Where the bytes go, in a few words (for the report).
    pub fn path(&self) -> String {
        match (&self.multipart, self.direct) {
            (Some(m), _) => format!(
                "bucket, multipart: {} parts of {} MiB, {} in flight",
                m.parts.len(),
                m.part_size / (1024 * 1024),
                PARTS_IN_FLIGHT.min(m.parts.len())
            ),
            (None, true) => "bucket, one presigned PUT".to_owned(),
            (None, false) => "Shutter, one presigned PUT".to_owned(),
        }
    }
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
    let multipart = match upload.get("multipart").filter(|m| !m.is_null()) {
        None => None,
        Some(m) => {
            let parts = m["parts"]
                .as_array()
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| {
                            Some((
                                u32::try_from(p["number"].as_u64()?).ok()?,
                                p["url"].as_str()?.to_owned(),
                            ))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let (Some(part_size), Some(complete_url), false) = (
                m["part_size"].as_u64().filter(|n| *n > 0),
                m["complete_url"].as_str(),
                parts.is_empty(),
            ) else {
                anyhow::bail!("an unreadable upload.multipart: {m}");
            };
            Some(MultipartTicket {
                part_size,
                parts,
                complete_url: complete_url.to_owned(),
            })
        }
    };
    Ok(Ticket {
        file_id: file_id.to_owned(),
        direct: !url.starts_with(&format!("{}/", ctx.base_url)),
        url: url.to_owned(),
        headers,
        multipart,
    })
}

/// How many parts of a multipart upload are sent at once.
pub(crate) const PARTS_IN_FLIGHT: usize = 4;

/// How long each leg of an upload took.
pub(crate) struct Sent {
    /// The file as the server answered (the `PUT`'s answer on Shutter, `complete`'s on S3).
    pub answer: serde_json::Value,
    /// The bytes: the `PUT` or every part.
    pub transfer: std::time::Duration,
    /// `POST /v1/files/{id}/complete` (zero when the `PUT` went to Shutter).
    pub complete: std::time::Duration,
}

/// The bytes `[start, end)` of `pieces` (consecutive buffers), as slices of them.
fn byte_range(pieces: &[bytes::Bytes], start: u64, end: u64) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for p in pieces {
        let (p_start, p_end) = (at, at + p.len() as u64);
        at = p_end;
        if p_end <= start || p_start >= end {
            continue;
        }
        let from = start.saturating_sub(p_start) as usize;
        let to = (end.min(p_end) - p_start) as usize;
        out.push(p.slice(from..to));
    }
    out
}

fn stream_body(pieces: Vec<bytes::Bytes>) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures::stream::iter(
        pieces.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

/// Uploads `pieces` (the file's bytes, in order) the way the ticket says: a `PUT` to
/// Shutter (done with its answer), or to the bucket then `complete`, or every part of a
/// multipart upload ([`PARTS_IN_FLIGHT`] at a time) then `complete` with their ETags.
pub(crate) async fn send_upload(
    ctx: &crate::scenario::Ctx,
    token: &str,
    ticket: &Ticket,
    pieces: Vec<bytes::Bytes>,
) -> anyhow::Result<Sent> {
    use futures::StreamExt as _;
    use std::time::Instant;

    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let started = Instant::now();
    let parts = match &ticket.multipart {
        Some(m) => {
            // Owned futures, collected first (a lazy map over borrowed parts is not `Send`
            // for every lifetime, which the scenario's boxed future needs).
            let sends: Vec<futures::future::BoxFuture<'static, anyhow::Result<serde_json::Value>>> =
                m.parts
                    .iter()
                    .map(|&(number, ref url)| {
                        let start = u64::from(number - 1) * m.part_size;
                        let end = (start + m.part_size).min(total);
                        let body = stream_body(byte_range(&pieces, start, end));
                        let req = ctx
                            .http
                            .put(url)
                            .header(reqwest::header::CONTENT_LENGTH, end.saturating_sub(start))
                            .body(body);
                        Box::pin(async move {
                            let resp = req.send().await?;
                            let status = resp.status();
                            let etag = resp
                                .headers()
                                .get(reqwest::header::ETAG)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let text = resp.text().await.unwrap_or_default();
                            match etag {
                                Some(etag) if status.is_success() => Ok(serde_json::json!({
                                    "number": number,
                                    "etag": etag,
                                })),
                                _ => {
                                    anyhow::bail!("PUT of part {number} answered {status}: {text}")
                                }
                            }
                        }) as futures::future::BoxFuture<'static, _>
                    })
                    .collect();
            let etags: Vec<serde_json::Value> = futures::stream::iter(sends)
                .buffer_unordered(PARTS_IN_FLIGHT)
                .collect::<Vec<anyhow::Result<_>>>()
                .await
                .into_iter()
                .collect::<anyhow::Result<_>>()?;
            Some(etags)
        }
        None => {
            let mut req = ctx.http.put(&ticket.url).body(stream_body(pieces));
            // The bucket's URL signs the length (a stream would go chunked without it);
            // Shutter takes the stream as it comes.
            if ticket.direct {
                req = req.header(reqwest::header::CONTENT_LENGTH, total);
            }
            for (k, v) in &ticket.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req.send().await?;
            let status = resp.status();
            let text = resp.text().await?;
            if !status.is_success() {
                anyhow::bail!("PUT of the upload answered {status}: {text}");
            }
            if !ticket.direct {
                return Ok(Sent {
                    answer: serde_json::from_str(&text)?,
                    transfer: started.elapsed(),
                    complete: std::time::Duration::ZERO,
                });
            }
            None
        }
    };
    let transfer = started.elapsed();
    let url = match &ticket.multipart {
        Some(m) => m.complete_url.clone(),
        None => format!("{}/v1/files/{}/complete", ctx.base_url, ticket.file_id),
    };
    let body = match parts {
        Some(parts) => serde_json::json!({ "parts": parts }),
        None => serde_json::json!({}),
    };
    let resp = ctx
        .http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        anyhow::bail!(
            "POST /v1/files/{}/complete answered {status}: {answer}",
            ticket.file_id
        );
    }
    Ok(Sent {
        answer,
        transfer,
        complete: started.elapsed() - transfer,
    })
}

#[cfg(test)]
mod tests {
    use super::byte_range;
    use bytes::Bytes;

    #[test]
    fn byte_ranges_slice_across_pieces() {
        let pieces = vec![
            Bytes::from_static(b"abcd"),
            Bytes::from_static(b"efgh"),
            Bytes::from_static(b"ij"),
        ];
        let join = |v: Vec<Bytes>| v.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        assert_eq!(join(byte_range(&pieces, 0, 10)), b"abcdefghij");
        assert_eq!(join(byte_range(&pieces, 2, 7)), b"cdefg");
        assert_eq!(join(byte_range(&pieces, 4, 8)), b"efgh");
        assert_eq!(join(byte_range(&pieces, 8, 10)), b"ij");
        assert!(byte_range(&pieces, 10, 10).is_empty());
    }
}
