//! `soak`: ten minutes (`--soak-minutes`) of everything at once — the read mix and the write
//! mix on the keep-alive connections, and photo uploads (ticket, PUT, processing) from four
//! uploaders beside them — while the server's resident memory is sampled. After the first
//! minute of warm-up the RSS must stay flat (growth of at most 32 MiB to the end) and no
//! request may fail with a 5xx or a broken connection. Runs only when named
//! (`--only soak`).
//!
//! RSS is reported whole and in its two parts: anonymous memory (the process's own heap and
//! stacks) and file-backed pages (mostly the memory-mapped database, pages of the kernel's
//! cache that come and go with reads and checkpoints: tens of MiB from one sample to the
//! next). `anon_growth_mib` is the same target on the process's own memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use rand::Rng;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::upload_large::proc_status_kib;
use crate::scenarios::upload_small::photos_dir;
use crate::scenarios::{create_file, read_mix, say, send_upload, write_mix};

pub struct Soak;

/// Load runs in slices of this length; RSS is read between them.
const SLICE: Duration = Duration::from_secs(30);
const WARMUP: Duration = Duration::from_secs(60);
const UPLOADERS: usize = 4;
const PHOTO: &str = "kleiber_1080x1080.jpg";
/// Read-mix kinds first, then write-mix kinds.
const KINDS: [&str; 8] = [
    "feed", "post", "profile", "files", "new_post", "comment", "like", "follow",
];

#[async_trait]
impl Scenario for Soak {
    fn name(&self) -> &'static str {
        "soak"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "rss_growth_mib",
                check: Check::AtMost(32.0),
            },
            Target {
                figure: "anon_growth_mib",
                check: Check::AtMost(32.0),
            },
            Target {
                figure: "server_errors",
                check: Check::AtMost(0.0),
            },
            Target {
                figure: "upload_errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        read_mix::check_seeded(ctx).await?;
        let total = ctx.durations.soak;
        let photo = bytes::Bytes::from(
            std::fs::read(photos_dir().join(PHOTO)).context("reading the soak photo")?,
        );
        eprintln!(
            "bench: soak: {} s of reads 2/3, writes 1/3 and {UPLOADERS} photo uploaders",
            total.as_secs()
        );

        // Uploaders run beside the mix until it ends.
        let stop = AtomicBool::new(false);
        let uploaded = AtomicU64::new(0);
        let upload_errors = AtomicU64::new(0);
        let uploader = |u: usize| {
            let token = ctx.tokens[u % ctx.tokens.len()].to_string();
            let (stop, uploaded, upload_errors, photo) =
                (&stop, &uploaded, &upload_errors, photo.clone());
            async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let one = async {
                        let name = format!("SOAK_{u}_{n}.jpg");
                        let ticket =
                            create_file(ctx, &token, &name, photo.len() as u64, "image/jpeg")
                                .await?;
                        send_upload(ctx, &token, &ticket, vec![photo.clone()]).await
                    };
                    match one.await {
                        Ok(_) => uploaded.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("bench: soak: upload failed: {e:#}");
                            upload_errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }
        };
        let uploaders = futures::future::join_all((0..UPLOADERS).map(uploader));

        let reads = read_mix::requests(ctx);
        let writes = write_mix::requests(ctx);
        let make = move |seq: u64, rng: &mut rand::rngs::StdRng| {
            if rng.gen_range(0..3) < 2 {
                reads(seq, rng)
            } else {
                let mut req: Req = writes(seq, rng);
                req.kind += read_mix::KINDS.len();
                req
            }
        };
        let make = Arc::new(make);
        let started = Instant::now();
        let mix = async {
            let mut rss_mib = Vec::new();
            let mut anon_mib = Vec::new();
            let mut baseline = None;
            let (mut ok, mut server_errors, mut client_errors, mut io_errors) = (0, 0, 0, 0);
            while started.elapsed() < total {
                let make = make.clone();
                let r = load::run(
                    ctx.addr,
                    ctx.connections,
                    Stop::For(SLICE.min(total - started.elapsed())),
                    &KINDS,
                    move |seq, rng| make(seq, rng),
                )
                .await?;
                say(&format!("soak {:>4} s", started.elapsed().as_secs()), &r);
                ok += r.ok;
                io_errors += r.io_errors;
                for (status, n) in &r.statuses {
                    if *status >= 500 {
                        server_errors += n;
                    } else {
                        client_errors += n;
                    }
                }
                let rss = proc_status_kib(ctx.server_pid, "VmRSS")? as f64 / 1024.0;
                let anon = proc_status_kib(ctx.server_pid, "RssAnon")? as f64 / 1024.0;
                let file = proc_status_kib(ctx.server_pid, "RssFile")? as f64 / 1024.0;
                eprintln!(
                    "bench:   soak: server RSS {rss:.1} MiB (anonymous {anon:.1}, file-backed {file:.1})"
                );
                rss_mib.push(rss);
                anon_mib.push(anon);
                if baseline.is_none() && started.elapsed() >= WARMUP {
                    baseline = Some((rss, anon));
                }
            }
            anyhow::Ok((
                rss_mib,
                anon_mib,
                baseline,
                ok,
                server_errors,
                client_errors,
                io_errors,
            ))
        };
        // However the mix ends, the uploaders stop with it.
        let mixing = async {
            let mixed = mix.await;
            stop.store(true, Ordering::Relaxed);
            mixed
        };
        let (mixed, ()) = tokio::join!(mixing, async {
            uploaders.await;
        });
        let (rss_mib, anon_mib, baseline, ok, server_errors, client_errors, io_errors) = mixed?;
        let end = *rss_mib.last().context("no slice ran")?;
        let anon_end = *anon_mib.last().context("no slice ran")?;
        let (baseline, anon_baseline) = baseline.unwrap_or((rss_mib[0], anon_mib[0]));
        let peak = rss_mib.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "bench: soak: RSS after warm-up {baseline:.1} MiB, end {end:.1} MiB, peak {peak:.1} MiB; anonymous {anon_baseline:.1} → {anon_end:.1} MiB"
        );

        let mut f = Figures::default();
        f.set("seconds", started.elapsed().as_secs_f64(), 0);
        f.count("connections", ctx.connections as u64);
        f.count("requests", ok);
        f.count("server_errors", server_errors + io_errors);
        f.count("client_errors", client_errors);
        f.count("uploads", uploaded.load(Ordering::Relaxed));
        f.count("upload_errors", upload_errors.load(Ordering::Relaxed));
        f.set("rss_after_warmup_mib", baseline, 1);
        f.set("rss_end_mib", end, 1);
        f.set("rss_peak_mib", peak, 1);
        f.set("rss_growth_mib", end - baseline, 1);
        f.set("anon_after_warmup_mib", anon_baseline, 1);
        f.set("anon_end_mib", anon_end, 1);
        f.set("anon_growth_mib", anon_end - anon_baseline, 1);
        Ok(f)
    }
}
