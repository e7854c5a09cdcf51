//! `upload_large`: one presigned `PUT` of 1 GiB (256 MiB in quick mode) by a premium user,
//! held against the disk: just before, the harness writes the same bytes to a file in the
//! same data directory, in the same 1 MiB pieces, and fsyncs it (`disk_mb_per_s`). The
//! server streams the body to disk while hashing it (SHA-256 and MD5), fsyncs and renames;
//! `mb_per_s` runs from the start of the `PUT` to its answer. The server's resident memory
//! is watched through `/proc`: its peak (`VmHWM`, reset just before through `clear_refs`)
//! over its resident size before the upload is `rss_growth_mib`.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use async_trait::async_trait;
use bytes::Bytes;
use rand::{RngCore, SeedableRng};

use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::{create_file, put_content};

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
fn pieces(total: u64) -> Vec<Bytes> {
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

#[async_trait]
impl Scenario for UploadLarge {
    fn name(&self) -> &'static str {
        "upload_large"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "ratio_to_disk",
                check: Check::AtLeast(0.5),
            },
            Target {
                figure: "rss_growth_mib",
                check: Check::AtMost(64.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let total = if ctx.durations.quick {
            256 * MIB
        } else {
            1024 * MIB
        };
        let pieces = pieces(total);
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
        let pid = ctx.server_pid;
        // Reset the peak resident size to the current one (Linux: "5" to clear_refs).
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .context("resetting the server's VmHWM")?;
        let rss_before = proc_status_kib(pid, "VmRSS")?;
        eprintln!("bench: upload_large: PUT of {} MiB", total / MIB);
        let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        let started = Instant::now();
        let answer = put_content(ctx, &ticket, reqwest::Body::wrap_stream(stream)).await?;
        let put_secs = started.elapsed().as_secs_f64();
        let peak = proc_status_kib(pid, "VmHWM")?;
        let file = &answer["file"];
        if file["status"] != "ready" || file["bytes_received"].as_u64() != Some(total) {
            bail!("the large upload did not end ready with every byte: {answer}");
        }
        // Give the space back for the scenarios after.
        ctx.http
            .delete(format!("{}/v1/files/{}", ctx.base_url, ticket.file_id))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()
            .context("DELETE of the large file")?;

        let mut f = Figures::default();
        f.count("bytes", total);
        f.set("seconds", put_secs, 3);
        f.set("mb_per_s", mb / put_secs, 1);
        f.set("disk_mb_per_s", mb / disk_secs, 1);
        f.set("ratio_to_disk", disk_secs / put_secs, 3);
        f.set("rss_before_mib", rss_before as f64 / 1024.0, 1);
        f.set("rss_peak_mib", peak as f64 / 1024.0, 1);
        f.set(
            "rss_growth_mib",
            peak.saturating_sub(rss_before) as f64 / 1024.0,
            1,
        );
        eprintln!(
            "bench:   {:.0} MB/s against the disk's {:.0} MB/s; server RSS {:.1} MiB, peak +{:.1} MiB",
            mb / put_secs,
            mb / disk_secs,
            rss_before as f64 / 1024.0,
            peak.saturating_sub(rss_before) as f64 / 1024.0
        );
        Ok(f)
    }
}
