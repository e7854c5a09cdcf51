//! `post --caption TEXT PHOTO…`: creates the post with its photos declared (size, type,
//! SHA-256), uploads each photo with its ticket, then waits for `post.published` or
//! `post.failed` (Server-Sent Events from `/v1/events`, and a poll of the post every 2 s in
//! case the stream is unavailable).
//!
//! The post's `Idempotency-Key` is derived from the user and the whole request body (the
//! caption and each photo's name, type, size and SHA-256), so the same command run again
//! within 24 h gets the same post and tickets back (the server replays its answer) and only
//! sends what the server does not have yet, while a changed request (a renamed photo) is a
//! new post. When the post that answer names has been deleted since, a key derived from the
//! first and the dead post's id makes a new one (and, being derived, finds that one again on
//! the next run).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{segment, Ctx};
use crate::cli::{PostArgs, UploadVia};
use crate::error::{CliError, CliResult};
use crate::local::{hex, sha256_file, LocalFile};
use crate::output::text;
use crate::progress::{Bars, Tracker};
use crate::transfer::{self, Throttle};

/// How often the post is read while waiting, whatever the event stream says.
const POLL: Duration = Duration::from_secs(2);

pub async fn run(ctx: &mut Ctx, args: PostArgs) -> CliResult<()> {
    let photos = args
        .photos
        .iter()
        .map(|p| LocalFile::inspect(p, None))
        .collect::<CliResult<Vec<_>>>()?;
    let user_id = ctx.api.session()?.user_id.clone();
    let bars = Bars::new(ctx.bars_wanted());
    let file_bars: Vec<_> = photos.iter().map(|p| bars.file(&p.name, p.size)).collect();
    let total = bars.total(photos.iter().map(|p| p.size).sum());
    let mut hashes = Vec::new();
    for (photo, bar) in photos.iter().zip(&file_bars) {
        bar.set_message("hashing");
        hashes.push(sha256_file(&photo.path, Some(bar)).await?);
        bar.reset();
    }
    let media: Vec<Value> = photos
        .iter()
        .zip(&hashes)
        .map(|(p, sha256)| {
            json!({
                "filename": p.name,
                "content_type": p.content_type,
                "size": p.size,
                "sha256": sha256,
            })
        })
        .collect();
    let mut body = json!({ "caption": args.caption });
    if !media.is_empty() {
        body["media"] = Value::Array(media);
    }
    // Listening before the post exists, so that its event cannot be missed.
    let events = if args.no_wait || photos.is_empty() {
        None
    } else {
        listen(ctx).await
    };
    let mut key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| idempotency_key(&user_id, &body));
    let mut fresh_keys = 0;
    let created = loop {
        let (created, replayed) = create(ctx, &body, &key).await?;
        let post_id = text(&created["post"], "id").to_owned();
        if !replayed {
            break created;
        }
        if fresh_keys < FRESH_KEYS && post_is_gone(ctx, &post_id).await? {
            fresh_keys += 1;
            bars.note(&format!(
                "post {post_id}, created earlier with the same caption and photos, has been \
                 deleted since; creating a new one"
            ));
            key = successor_key(&key, &post_id);
            continue;
        }
        bars.note(&format!(
            "resuming post {post_id} (created earlier with the same caption and photos)"
        ));
        break created;
    };
    let post_id = text(&created["post"], "id").to_owned();
    let tickets = created["uploads"].as_array().cloned().unwrap_or_default();
    if tickets.len() != photos.len() {
        return Err(CliError::new(
            "internal",
            format!(
                "the server gave {} upload tickets for {} photos",
                tickets.len(),
                photos.len()
            ),
        ));
    }
    let throttle = Throttle::new(args.rate.limit_rate);
    let mut base = 0;
    for ((photo, ticket), bar) in photos.iter().zip(&tickets).zip(file_bars) {
        let tracker = Tracker {
            file: bar,
            total: total.clone(),
            base,
        };
        tracker.file.set_message("uploading");
        let sent = send_photo(
            ctx,
            &bars,
            photo,
            ticket,
            args.upload_via,
            &throttle,
            &tracker,
        )
        .await;
        match sent {
            Ok(()) => tracker.file.finish_with_message("done"),
            Err(err) => {
                tracker.file.abandon_with_message("failed");
                return Err(CliError {
                    detail: format!("post {post_id}: {}: {}", photo.path.display(), err.detail),
                    ..err
                });
            }
        }
        base += photo.size;
        total.set_position(base);
    }
    total.finish_and_clear();
    let post = if args.no_wait {
        ctx.api
            .get(&format!("v1/posts/{}", segment(&post_id)))
            .await?
    } else {
        wait(ctx, &post_id, events, Duration::from_secs(args.timeout)).await?
    };
    ctx.out.emit(&post, || {
        format!(
            "Post {} {} ({} photo{}).",
            text(&post, "id"),
            text(&post, "status"),
            photos.len(),
            if photos.len() == 1 { "" } else { "s" }
        )
    });
    Ok(())
}

/// How many times a post found deleted is made again with a new key, in one run.
const FRESH_KEYS: u32 = 3;

/// The default Idempotency-Key: the same user sending the same request body (the server
/// answers a different body under the same key with 422 `idempotency_key_reused`).
fn idempotency_key(user_id: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"shutter-cli post\n");
    h.update(user_id.as_bytes());
    h.update(b"\n");
    h.update(body.to_string().as_bytes());
    format!("shutter-cli-{}", &hex(&h.finalize())[..40])
}

/// The key that takes over from `key` once the post made with it has been deleted.
fn successor_key(key: &str, dead_post_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"shutter-cli post after a deleted one\n");
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(dead_post_id.as_bytes());
    format!("shutter-cli-{}", &hex(&h.finalize())[..40])
}

/// Whether the post is gone (deleted since the answer that named it).
async fn post_is_gone(ctx: &mut Ctx, post_id: &str) -> CliResult<bool> {
    let url = ctx.api.url(&format!("v1/posts/{}", segment(post_id)))?;
    let response = ctx
        .api
        .send(|c, t| {
            c.get(url.clone())
                .bearer_auth(t)
                .timeout(crate::api::REQUEST_TIMEOUT)
        })
        .await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(true);
    }
    crate::api::checked(response).await.map(|_| false)
}

/// `POST /v1/posts`: the answer, and whether the server replayed an earlier one.
async fn create(ctx: &mut Ctx, body: &Value, key: &str) -> CliResult<(Value, bool)> {
    let url = ctx.api.url("v1/posts")?;
    let response = ctx
        .api
        .send(|c, t| {
            c.post(url.clone())
                .bearer_auth(t)
                .header("Idempotency-Key", key)
                .json(body)
                .timeout(crate::api::REQUEST_TIMEOUT)
        })
        .await?;
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let created: Value = crate::api::json_body(response).await?;
    Ok((created, replayed))
}

/// Uploads one photo with its ticket, unless the server has it already.
async fn send_photo(
    ctx: &mut Ctx,
    bars: &Bars,
    photo: &LocalFile,
    ticket: &Value,
    via: UploadVia,
    throttle: &Throttle,
    tracker: &Tracker,
) -> CliResult<()> {
    let file_id = text(ticket, "file_id").to_owned();
    let file: Value = ctx
        .api
        .get(&format!("v1/files/{}", segment(&file_id)))
        .await?;
    match text(&file, "status") {
        "processing" | "ready" => {
            tracker.start_at(photo.size);
            return Ok(());
        }
        "failed" => {
            let failure = &file["failure"];
            return Err(CliError::new(
                failure["code"].as_str().unwrap_or("upload_failed"),
                failure["detail"].as_str().unwrap_or("the upload failed"),
            ));
        }
        _ => {}
    }
    let tus_url = text(ticket, "tus_url");
    if via == UploadVia::Tus && !tus_url.is_empty() {
        let url = ctx.api.url(tus_url)?;
        let offset = transfer::offset(&mut ctx.api, &url).await?;
        if offset > 0 {
            bars.note(&format!(
                "resuming {} at byte {offset} of {}",
                photo.path.display(),
                photo.size
            ));
        }
        return transfer::patch_all(
            &mut ctx.api,
            &url,
            &photo.path,
            photo.size,
            offset,
            throttle,
            tracker,
        )
        .await;
    }
    put_ticket(ctx, photo, ticket, &file_id, throttle, tracker).await
}

/// The ticket's presigned `PUT` (or its multipart parts), then `complete`.
async fn put_ticket(
    ctx: &mut Ctx,
    photo: &LocalFile,
    ticket: &Value,
    file_id: &str,
    throttle: &Throttle,
    tracker: &Tracker,
) -> CliResult<()> {
    let empty = serde_json::Map::new();
    let headers = ticket["headers"].as_object().unwrap_or(&empty);
    let mut complete_body = json!({});
    let complete_url = match ticket["multipart"].as_object() {
        Some(multipart) => {
            let part_size = multipart["part_size"].as_u64().unwrap_or(0).max(1);
            let mut done = Vec::new();
            for part in multipart["parts"].as_array().cloned().unwrap_or_default() {
                let number = part["number"].as_u64().unwrap_or(0);
                let start = number.saturating_sub(1) * part_size;
                let len = part_size.min(photo.size.saturating_sub(start));
                tracker.set(start);
                let url = ctx.api.url(text(&part, "url"))?;
                let response = transfer::put_file(
                    &ctx.api,
                    &url,
                    &empty,
                    &photo.path,
                    (start, len),
                    throttle,
                    tracker,
                )
                .await?;
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                done.push(json!({ "number": number, "etag": etag }));
            }
            complete_body = json!({ "parts": done });
            multipart
                .get("complete_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
        None => {
            // On the built-in store, Shutter's own signed URL (moved onto --server like any
            // of its URLs); on S3, the bucket's.
            let url = ctx.api.url(text(ticket, "url"))?;
            transfer::put_file(
                &ctx.api,
                &url,
                headers,
                &photo.path,
                (0, photo.size),
                throttle,
                tracker,
            )
            .await?;
            format!("v1/files/{}/complete", segment(file_id))
        }
    };
    // On S3 this is what checks and commits the bytes; on the built-in store it only
    // returns the file.
    let url = ctx.api.url(&complete_url)?;
    ctx.api
        .empty(|c, t| c.post(url.clone()).bearer_auth(t).json(&complete_body))
        .await
}

/// Starts reading the user's event stream in the background; the ids of posts that were
/// published or failed come out of the receiver. `None` when the stream cannot be opened
/// (polling alone then tells).
async fn listen(ctx: &mut Ctx) -> Option<mpsc::Receiver<String>> {
    let url = ctx.api.url("v1/events").ok()?;
    let response = ctx
        .api
        .send(|c, t| {
            c.get(url.clone())
                .bearer_auth(t)
                .header("Accept", "text/event-stream")
        })
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut parser = SseParser::default();
        while let Some(Ok(chunk)) = stream.next().await {
            for data in parser.feed(&chunk) {
                let Ok(event) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                let kind = text(&event, "type");
                if kind == "post.published" || kind == "post.failed" {
                    let id = text(&event, "post_id").to_owned();
                    if tx.send(id).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Some(rx)
}

/// Waits until the post is published (its JSON) or failed (an error with the failure's
/// code), for at most `timeout`.
async fn wait(
    ctx: &mut Ctx,
    post_id: &str,
    mut events: Option<mpsc::Receiver<String>>,
    timeout: Duration,
) -> CliResult<Value> {
    let deadline = Instant::now() + timeout;
    let path = format!("v1/posts/{}", segment(post_id));
    loop {
        let post: Value = ctx.api.get(&path).await?;
        match text(&post, "status") {
            "published" => return Ok(post),
            "failed" => return Err(failure_of(&post)),
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CliError::new(
                "timeout",
                format!(
                    "post {post_id} is still {} after {} s",
                    text(&post, "status"),
                    timeout.as_secs()
                ),
            ));
        }
        let nap = left.min(POLL);
        let closed = match events.as_mut() {
            Some(rx) => {
                // Any post event, or the poll interval, whichever comes first.
                tokio::select! {
                    got = rx.recv() => got.is_none(),
                    () = tokio::time::sleep(nap) => false,
                }
            }
            None => {
                tokio::time::sleep(nap).await;
                false
            }
        };
        if closed {
            events = None;
        }
    }
}

/// The error a failed post stands for: the code of its first failed photo.
fn failure_of(post: &Value) -> CliError {
    let failure = post["media"]
        .as_array()
        .and_then(|media| media.iter().find(|m| m["failure"].is_object()))
        .map(|m| &m["failure"]);
    let id = text(post, "id");
    match failure {
        Some(f) => CliError::new(
            f["code"].as_str().unwrap_or("post_failed"),
            format!(
                "post {id} failed: {}",
                f["detail"]
                    .as_str()
                    .unwrap_or("a photo could not be processed")
            ),
        ),
        None => CliError::new("post_failed", format!("post {id} failed")),
    }
}

/// Server-Sent Events, as far as this client needs them: the `data` of each event.
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    /// Takes more bytes of the stream; the data of every event they complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p
            .feed(b"event: post.published\ndata: {\"type\":")
            .is_empty());
        let got = p.feed(b"\"post.published\"}\n\n: keep-alive\n\nevent: x\ndata: 1\r\n\r\n");
        assert_eq!(
            got,
            vec!["{\"type\":\"post.published\"}".to_owned(), "1".to_owned()]
        );
    }

    #[test]
    fn the_key_follows_the_whole_request() {
        let body = |caption: &str, filename: &str, content_type: &str, size: u64| {
            json!({"caption": caption, "media": [{
                "filename": filename, "content_type": content_type, "size": size, "sha256": "aa"
            }]})
        };
        let a = idempotency_key("u", &body("hi", "a.jpg", "image/jpeg", 1));
        assert_eq!(
            a,
            idempotency_key("u", &body("hi", "a.jpg", "image/jpeg", 1))
        );
        // Any change of user, caption, name, type or size is another request.
        for (user, other) in [
            ("u", body("hi!", "a.jpg", "image/jpeg", 1)),
            ("v", body("hi", "a.jpg", "image/jpeg", 1)),
            ("u", body("hi", "b.jpg", "image/jpeg", 1)),
            ("u", body("hi", "a.jpg", "image/png", 1)),
            ("u", body("hi", "a.jpg", "image/jpeg", 2)),
        ] {
            assert_ne!(a, idempotency_key(user, &other), "{user} {other}");
        }
        assert!(a.len() <= 255);
        let next = successor_key(&a, "p1");
        assert_eq!(next, successor_key(&a, "p1"));
        assert_ne!(next, a);
        assert_ne!(next, successor_key(&a, "p2"));
        assert!(next.len() <= 255);
    }

    #[test]
    fn a_failed_post_gives_its_photo_s_code() {
        let post = json!({"id": "p", "status": "failed", "media": [
            {"failure": null}, {"failure": {"code": "content_mismatch", "detail": "not a JPEG"}}
        ]});
        let err = failure_of(&post);
        assert_eq!(err.code, "content_mismatch");
        assert!(err.detail.contains("not a JPEG"));
    }
}
