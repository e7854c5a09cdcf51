//! `upload_large`: one upload of 1 GiB (256 MiB in quick mode) by a premium user, held
//! against the disk: just before, the harness writes the same bytes to a file in the same
//! data directory, in the same 1 MiB pieces, and fsyncs it (`disk_mb_per_s`). The upload
//! follows the ticket (`path`): on local storage one presigned `PUT` to Shutter, which
//! streams the body to disk while hashing it (SHA-256 and MD5), fsyncs and renames; on S3
//! storage a multipart upload straight to the bucket (presigned parts, a few in flight),
//! then `POST /v1/files/{id}/complete`, where Shutter reads the bytes back from the bucket
//! to check them. `mb_per_s` runs from the first byte sent to the answer that the file is
//! ready (`transfer_s` + `complete_s`). The server's resident memory is watched through
//! `/proc`: its peak (`VmHWM`, reset just before through `clear_refs`) over its resident
//! size before the upload is `rss_growth_mib` (on S3 the S3 server's is `store_rss_growth_mib`).
//!
//! On S3 a tus variant follows: 1 GiB (in both modes) in one tus `PATCH` that Shutter
//! streams into the bucket (chunk objects, then a multipart copy inside the store):
//! `tus_mb_per_s`, and the server's peak growth `tus_rss_growth_mib`.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bytes::Bytes;
use rand::{RngCore, SeedableRng};

use crate::scenario::{Check, Ctx, Figures, Scenario, Storage, Target};
use crate::scenarios::{create_file, send_upload};

pub struct UploadLarge;

const MIB: u64 = 1024 * 1024;
/// Bytes are sent and written in pieces of this size.
const PIECE: usize = MIB as usize;

/// A `/proc/<pid>/status` field in KiB.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The pieces of the upload: 64 distinct random MiB, repeated (incompressible, and cheap to
/// produce at the rate a disk takes them).
fn pieces_of(total: u64) -> Vec<Bytes> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1a29e);
    let distinct: Vec<Bytes> = (0..64)
        .map(|_| {
            let mut b = vec![0u8; PIECE];
            rng.fill_bytes(&mut b);
            Bytes::from(b)
        })
        .collect();
    (0..(total / MIB) as usize)
        .map(|i| distinct[i % distinct.len()].clone())
        .collect()
}

/// Resets a process's peak resident size to its current one (Linux: "5" to `clear_refs`)
/// and returns that size in KiB.
fn reset_peak(pid: u32) -> anyhow::Result<u64> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the VmHWM of process {pid}"))?;
    proc_status_kib(pid, "VmRSS")
}

/// The size of the tus variant (S3 only).
const TUS_BYTES: u64 = 1024 * MIB;

/// A tus upload of `pieces` through Shutter: `POST /v1/tus` (creation), then one `PATCH`
/// with every byte. Returns the file id and the seconds from the creation to the `PATCH`'s
/// answer.
async fn tus_upload(ctx: &Ctx, token: &str, pieces: Vec<Bytes>) -> anyhow::Result<(String, f64)> {
    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let started = Instant::now();
    let created = ctx
        .http
        .post(format!("{}/v1/tus", ctx.base_url))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", total.to_string())
        .send()
        .await?;
    let status = created.status();
    let location = created
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location.filter(|_| status.is_success()) else {
        bail!(
            "POST /v1/tus answered {status}: {}",
            created.text().await.unwrap_or_default()
        );
    };
    let file_id = location.rsplit('/').next().unwrap_or_default().to_owned();
    let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let patched = ctx
        .http
        .patch(&location)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/offset+octet-stream",
        )
        .header(reqwest::header::CONTENT_LENGTH, total)
        .timeout(std::time::Duration::from_secs(600))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    let status = patched.status();
    let offset = patched
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !status.is_success() || offset != Some(total) {
        bail!(
            "the tus PATCH answered {status} at offset {offset:?}: {}",
            patched.text().await.unwrap_or_default()
        );
    }
    Ok((file_id, started.elapsed().as_secs_f64()))
}

/// The file as the server has it, checked ready with `total` bytes.
async fn ready_file(ctx: &Ctx, token: &str, id: &str, total: u64) -> anyhow::Result<()> {
    let body: serde_json::Value = ctx
        .http
        .get(format!("{}/v1/files/{id}", ctx.base_url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let file = body.get("file").unwrap_or(&body);
    if file["status"] != "ready" || file["bytes_received"].as_u64() != Some(total) {
        bail!("the upload did not end ready with every byte: {body}");
    }
    Ok(())
}

/// `DELETE /v1/files/{id}`: the space back for the scenarios after.
async fn delete_file(ctx: &Ctx, token: &str, id: &str) -> anyhow::Result<()> {
    ctx.http
        .delete(format!("{}/v1/files/{id}", ctx.base_url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("DELETE of the large file {id}"))?;
    Ok(())
}

#[async_trait]
impl Scenario for UploadLarge {
    fn name(&self) -> &'static str {
        "upload_large"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "ratio_to_disk",
                check: Check::AtLeast(0.8),
            },
            Target {
                figure: "rss_growth_mib",
                check: Check::AtMost(64.0),
            },
            Target {
                figure: "tus_rss_growth_mib",
                check: Check::AtMost(64.0),
            },
        ]
        .into_iter()
        .filter(|t| crate::scenario::storage() == Storage::S3 || !t.figure.starts_with("tus_"))
        .collect()
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let total = if ctx.durations.quick {
            256 * MIB
        } else {
            1024 * MIB
        };
        let pieces = pieces_of(total);
        let mb = total as f64 / 1e6;

        // The disk, the same way: the same bytes into the same filesystem, then fsync.
        eprintln!(
            "bench: upload_large: writing {} MiB to disk first",
            total / MIB
        );
        let probe = ctx.data_dir.join("disk-probe.bin");
        let disk_secs = {
            let pieces = pieces.clone();
            let probe = probe.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
                let started = Instant::now();
                let mut file = std::fs::File::create(&probe)?;
                for p in &pieces {
                    file.write_all(p)?;
                }
                file.sync_all()?;
                Ok(started.elapsed().as_secs_f64())
            })
            .await??
        };
        std::fs::remove_file(&probe)?;

        let token = ctx.minter.token(&ctx.seeded.premium.id)?;
        let ticket = create_file(
            ctx,
            &token,
            "archive.bin",
            total,
            "application/octet-stream",
        )
        .await
        .context("a premium user's ticket for the large file")?;
        let path = ticket.path();
        let pid = ctx.server_pid;
        let rss_before = reset_peak(pid)?;
        let store_before = ctx.store_pid.map(reset_peak).transpose()?;
        eprintln!("bench: upload_large: {} MiB to {path}", total / MIB);
        let sent = send_upload(ctx, &token, &ticket, pieces).await?;
        let peak = proc_status_kib(pid, "VmHWM")?;
        let store_peak = ctx
            .store_pid
            .map(|p| proc_status_kib(p, "VmHWM"))
            .transpose()?;
        let secs = (sent.transfer + sent.complete).as_secs_f64();
        let file = &sent.answer["file"];
        if file["status"] != "ready" || file["bytes_received"].as_u64() != Some(total) {
            bail!(
                "the large upload did not end ready with every byte: {}",
                sent.answer
            );
        }
        delete_file(ctx, &token, &ticket.file_id).await?;

        let mut f = Figures::default();
        f.count("bytes", total);
        f.text("path", path.as_str());
        f.set("seconds", secs, 3);
        f.set("transfer_s", sent.transfer.as_secs_f64(), 3);
        f.set("complete_s", sent.complete.as_secs_f64(), 3);
        f.set("mb_per_s", mb / secs, 1);
        f.set("disk_mb_per_s", mb / disk_secs, 1);
        f.set("ratio_to_disk", disk_secs / secs, 3);
        f.set("rss_before_mib", rss_before as f64 / 1024.0, 1);
        f.set("rss_peak_mib", peak as f64 / 1024.0, 1);
        f.set(
            "rss_growth_mib",
            peak.saturating_sub(rss_before) as f64 / 1024.0,
            1,
        );
        if let (Some(before), Some(peak)) = (store_before, store_peak) {
            f.set(
                "store_rss_growth_mib",
                peak.saturating_sub(before) as f64 / 1024.0,
                1,
            );
        }
        eprintln!(
            "bench:   {:.0} MB/s ({:.2} s sending, {:.2} s complete) against the disk's {:.0} MB/s; server RSS {:.1} MiB, peak +{:.1} MiB",
            mb / secs,
            sent.transfer.as_secs_f64(),
            sent.complete.as_secs_f64(),
            mb / disk_secs,
            rss_before as f64 / 1024.0,
            peak.saturating_sub(rss_before) as f64 / 1024.0
        );

        if ctx.storage == Storage::S3 {
            let tus_pieces = pieces_of(TUS_BYTES);
            let rss_before = reset_peak(pid)?;
            eprintln!(
                "bench: upload_large: tus PATCH of {} MiB through Shutter into the bucket",
                TUS_BYTES / MIB
            );
            let (id, tus_secs) = tus_upload(ctx, &token, tus_pieces).await?;
            let peak = proc_status_kib(pid, "VmHWM")?;
            ready_file(ctx, &token, &id, TUS_BYTES).await?;
            delete_file(ctx, &token, &id).await?;
            let growth = peak.saturating_sub(rss_before) as f64 / 1024.0;
            f.count("tus_bytes", TUS_BYTES);
            f.set("tus_seconds", tus_secs, 3);
            f.set("tus_mb_per_s", TUS_BYTES as f64 / 1e6 / tus_secs, 1);
            f.set("tus_rss_growth_mib", growth, 1);
            eprintln!(
                "bench:   tus {:.0} MB/s; server peak +{growth:.1} MiB",
                TUS_BYTES as f64 / 1e6 / tus_secs
            );
        }
        Ok(f)
    }
}
