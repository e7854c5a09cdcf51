//! `upload_small`: 1080×1080 JPEG photos (the shared test photo `kleiber_1080x1080.jpg`,
//! 130 KB) end to end at 16 concurrent uploaders, each a different user: `POST /v1/files`
//! for a ticket, the presigned `PUT` (on S3 storage to the bucket, then `POST
//! /v1/files/{id}/complete`), then waiting on the user's own live event stream
//! (`GET /v1/events`, Server-Sent Events) for `file.ready`, which comes once the variants
//! and the blurhash are stored. Each photo's time runs from the ticket request to that
//! event. Every uploader sends one photo first that is not counted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, Barrier};

use crate::scenario::{Check, Ctx, Figures, Scenario, Storage, Target};
use crate::scenarios::{create_file, send_upload};

pub struct UploadSmall;

const UPLOADERS: usize = 16;
const PHOTO: &str = "kleiber_1080x1080.jpg";

/// The shared test photos (`../shared/testdata/photos` beside the repository).
pub(crate) fn photos_dir() -> PathBuf {
    crate::server::workspace_root()
        .join("..")
        .join("shared")
        .join("testdata")
        .join("photos")
}

/// Reads a user's event stream and passes on `(type, file_id)` of each event.
async fn events(
    ctx: &Ctx,
    token: &str,
) -> anyhow::Result<mpsc::UnboundedReceiver<(String, String)>> {
    let mut resp = ctx
        .http
        .get(format!("{}/v1/events", ctx.base_url))
        .bearer_auth(token)
        .timeout(Duration::from_secs(3600))
        .send()
        .await?
        .error_for_status()
        .context("GET /v1/events")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                let Some(data) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                    continue;
                };
                let kind = v["type"].as_str().unwrap_or_default().to_owned();
                let file = v["file_id"].as_str().unwrap_or_default().to_owned();
                if tx.send((kind, file)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// One photo end to end; its time from the ticket request to `file.ready`.
async fn one_photo(
    ctx: &Ctx,
    token: &str,
    photo: &bytes::Bytes,
    events: &mut mpsc::UnboundedReceiver<(String, String)>,
    n: usize,
) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let ticket = create_file(
        ctx,
        token,
        &format!("IMG_{n:05}.jpg"),
        photo.len() as u64,
        "image/jpeg",
    )
    .await?;
    send_upload(ctx, token, &ticket, vec![photo.clone()]).await?;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .context("no file.ready within 60 s")?;
        let Some((kind, file)) = event else {
            bail!("the event stream ended");
        };
        if file != ticket.file_id {
            continue;
        }
        match kind.as_str() {
            "file.ready" => return Ok((started.elapsed(), ticket.file_id)),
            "file.failed" => bail!("photo {} failed to process", ticket.file_id),
            _ => {}
        }
    }
}

#[async_trait]
impl Scenario for UploadSmall {
    fn name(&self) -> &'static str {
        "upload_small"
    }

    fn targets(&self) -> Vec<Target> {
        vec![Target {
            figure: "photos_per_s",
            check: Check::AtLeast(100.0),
        }]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let path = photos_dir().join(PHOTO);
        let photo = bytes::Bytes::from(
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        );
        if ctx.tokens.len() < UPLOADERS {
            bail!("upload_small needs {UPLOADERS} seeded users");
        }
        let d = ctx.durations;
        eprintln!(
            "bench: upload_small: {UPLOADERS} uploaders of a {} KB 1080×1080 JPEG for {} s",
            photo.len() / 1000,
            d.measure.as_secs()
        );
        let barrier = Arc::new(Barrier::new(UPLOADERS));
        let mut first_file = None;
        let work = (0..UPLOADERS).map(|w| {
            let token = ctx.tokens[ctx.tokens.len() - 1 - w].clone();
            let barrier = barrier.clone();
            let photo = photo.clone();
            async move {
                let mut measured = Vec::new();
                let mut stream = events(ctx, &token).await?;
                let (_, warm) = one_photo(ctx, &token, &photo, &mut stream, w).await?;
                barrier.wait().await;
                let start = Instant::now();
                let mut n = 0;
                while start.elapsed() < d.measure {
                    n += 1;
                    let (t, _) =
                        one_photo(ctx, &token, &photo, &mut stream, UPLOADERS * n + w).await?;
                    measured.push((Instant::now(), t));
                }
                Ok::<_, anyhow::Error>((start, warm, measured))
            }
        });
        let outcomes = futures::future::join_all(work).await;
        let mut start = None;
        let mut measured: Vec<(Instant, Duration)> = Vec::new();
        for outcome in outcomes {
            let (s, warm, mine) = outcome?;
            start = Some(start.map_or(s, |t: Instant| t.min(s)));
            first_file.get_or_insert(warm);
            measured.extend(mine);
        }
        let (Some(start), false) = (start, measured.is_empty()) else {
            bail!("no photo was measured");
        };
        let end = measured.iter().map(|(at, _)| *at).max().unwrap_or(start);
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        for (_, t) in &measured {
            h.saturating_record(t.as_micros().max(1) as u64);
        }
        // What `ready` means here: stored dimensions, a blurhash and all three variants.
        let file: serde_json::Value = ctx
            .http
            .get(format!(
                "{}/v1/files/{}",
                ctx.base_url,
                first_file.unwrap_or_default()
            ))
            .bearer_auth(&*ctx.tokens[ctx.tokens.len() - 1])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let variants = ["thumb", "w640", "w1080"]
            .iter()
            .filter(|v| file["variants"][**v]["url"].is_string())
            .count();
        if file["status"] != "ready" || variants != 3 || !file["blurhash"].is_string() {
            bail!("an uploaded photo is not ready with three variants and a blurhash: {file}");
        }
        let photos = measured.len();
        let secs = (end - start).as_secs_f64().max(1e-9);
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        eprintln!(
            "bench:   {photos} photos, {:.1}/s, p50 {:.3} s, p99 {:.3} s",
            photos as f64 / secs,
            q(0.5),
            q(0.99)
        );
        let mut f = Figures::default();
        f.count("uploaders", UPLOADERS as u64);
        f.text(
            "path",
            match ctx.storage {
                Storage::Local => "Shutter, one presigned PUT",
                Storage::S3 => "bucket, one presigned PUT, then complete",
            },
        );
        f.count("photos", photos as u64);
        f.count("photo_bytes", photo.len() as u64);
        f.set("photos_per_s", photos as f64 / secs, 2);
        f.set("p50_s", q(0.5), 4);
        f.set("p99_s", q(0.99), 4);
        f.set("max_s", h.max() as f64 / 1e6, 4);
        Ok(f)
    }
}
