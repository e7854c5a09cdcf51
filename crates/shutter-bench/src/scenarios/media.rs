//! `media`: the image pipeline itself (`shutter_media::process`: sniff, probe, decode,
//! orient, the three JPEG variants and the blurhash), in this process on one thread, on the
//! shared test photos: the median per image over the runs (quick 5, full 15, after one
//! warm-up run each). Held against `vipsthumbnail` (libvips' command-line tool, Debian
//! package `libvips-tools`) making the same three sizes — 1080 wide, 640 wide, a 150×150
//! centre crop, quality 82, metadata stripped — of the same 12 MP JPEG in the same run, with
//! `VIPS_CONCURRENCY=1`; its figure is the three invocations together. Without
//! `vipsthumbnail` on the PATH the vips figures are missing and the harness says so. The
//! 12 MP JPEG is timed once more tagged with a Display P3 profile, which the pipeline
//! converts to sRGB: the figure minus `ms_12mp_jpeg` is what colour management costs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use shutter_media::{process, Limits};

use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::upload_small::photos_dir;

pub struct Media;

/// Figure, test photo, declared content type.
const CASES: [(&str, &str, &str); 4] = [
    ("ms_12mp_jpeg", "kleiber_12mp_4000x3000.jpg", "image/jpeg"),
    ("ms_24mp_jpeg", "kleiber_24mp_6000x4000.jpg", "image/jpeg"),
    ("ms_png", "path_2560x1600.png", "image/png"),
    ("ms_webp", "kleiber_12mp_4000x3000.webp", "image/webp"),
];

/// The median of `runs` timings of `f`, in ms.
fn median_ms(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `vipsthumbnail` making the three sizes of `input`, timed together; the median over `runs`
/// after one run that is not counted.
fn vips_three_sizes(input: &Path, runs: usize) -> anyhow::Result<f64> {
    let out = tempfile::tempdir()?;
    let invocations: [(&[&str], &str); 3] = [
        (&["-s", "1080x"], "w1080"),
        (&["-s", "640x"], "w640"),
        (&["-s", "150x150", "--smartcrop", "centre"], "thumb"),
    ];
    let run_once = || -> anyhow::Result<()> {
        for (args, name) in invocations {
            let target = out.path().join(format!("{name}.jpg[Q=82,strip]"));
            let status = Command::new("vipsthumbnail")
                .arg(input)
                .args(args)
                .arg("-o")
                .arg(&target)
                .env("VIPS_CONCURRENCY", "1")
                .status()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "vipsthumbnail cannot run ({e}); install Debian's libvips-tools"
                    )
                })?;
            if !status.success() {
                anyhow::bail!("vipsthumbnail failed: {status}");
            }
        }
        Ok(())
    };
    run_once()?;
    median_ms(runs, run_once)
}

/// Everything the scenario measures, on the calling thread.
fn measure(runs: usize) -> anyhow::Result<Figures> {
    let photos = photos_dir();
    let limits = Limits::default();
    let mut f = Figures::default();
    f.count("runs", runs as u64);
    for (figure, file, declared) in CASES {
        let path = photos.join(file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let out =
            process(&bytes, declared, &limits).with_context(|| format!("processing {file}"))?;
        if out.variants.len() != 3 {
            anyhow::bail!("{file} gave {} variants, not 3", out.variants.len());
        }
        let ms = median_ms(runs, || {
            std::hint::black_box(process(&bytes, declared, &limits))?;
            Ok(())
        })?;
        eprintln!("bench:   {file}: {ms:.1} ms (median of {runs})");
        f.set(figure, ms, 2);
    }
    // The same 12 MP JPEG tagged Display P3: what converting to sRGB costs.
    let twelve = photos.join(CASES[0].1);
    let plain = std::fs::read(&twelve).with_context(|| format!("reading {}", twelve.display()))?;
    let icc = shutter_media::icc::matrix_profile("Display P3", shutter_media::icc::DISPLAY_P3);
    let tagged = shutter_media::icc::embed_in_jpeg(&plain, &icc, 65_519);
    let ms = median_ms(runs, || {
        std::hint::black_box(process(&tagged, "image/jpeg", &limits))?;
        Ok(())
    })?;
    eprintln!("bench:   the 12 MP JPEG tagged Display P3: {ms:.1} ms (median of {runs})");
    f.set("ms_12mp_jpeg_p3", ms, 2);
    if let (Some(png), Some(jpeg)) = (f.get("ms_png"), f.get("ms_12mp_jpeg")) {
        f.set("png_to_jpeg", png / jpeg.max(1e-9), 2);
    }
    match vips_three_sizes(&twelve, runs) {
        Ok(vips) => {
            eprintln!(
                "bench:   vipsthumbnail, the same three sizes of the 12 MP JPEG: {vips:.1} ms"
            );
            f.set("vips_ms_12mp_jpeg", vips, 2);
            if let Some(ours) = f.get("ms_12mp_jpeg") {
                f.set("ratio_to_vips", ours / vips.max(1e-9), 3);
            }
        }
        Err(why) => {
            eprintln!("bench:   vipsthumbnail NOT MEASURED: {why:#}; ratio_to_vips is missing");
            f.count("vips_missing", 1);
        }
    }
    Ok(f)
}

#[async_trait]
impl Scenario for Media {
    fn name(&self) -> &'static str {
        "media"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "ms_webp",
                check: Check::AtMost(150.0),
            },
            Target {
                figure: "png_to_jpeg",
                check: Check::AtMost(2.0),
            },
            Target {
                figure: "ratio_to_vips",
                check: Check::AtMost(0.12),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let runs = if ctx.durations.quick { 5 } else { 15 };
        eprintln!("bench: media: the pipeline on the test photos, one thread, {runs} runs each");
        tokio::task::spawn_blocking(move || measure(runs)).await?
    }
}
