//! The image pipeline's benchmark: `process` on the test photos, one thread, medians, next
//! to `vipsthumbnail` making the same three sizes of the 12 MP JPEG in the same run.
//!
//! ```text
//! cargo run --release -p shutter-media --example pipeline_bench [-- RUNS]
//! ```
//!
//! Prints a line per measurement and, last, one line of JSON with `ms_12mp_jpeg`,
//! `ms_24mp_jpeg`, `ms_png`, `ms_webp`, `vips_ms_12mp_jpeg` and `ratio_to_vips` (the 12 MP
//! JPEG's time over vipsthumbnail's; the target is at most 0.35). Without `vipsthumbnail`
//! on the PATH (Debian: `libvips-tools`) the vips fields are `null` and it says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use shutter_media::{process, Limits};

const DEFAULT_RUNS: usize = 15;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => DEFAULT_RUNS,
    };
    let photos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/photos");
    let limits = Limits::default();

    let cases = [
        ("ms_12mp_jpeg", "kleiber_12mp_4000x3000.jpg", "image/jpeg"),
        ("ms_24mp_jpeg", "kleiber_24mp_6000x4000.jpg", "image/jpeg"),
        ("ms_png", "path_2560x1600.png", "image/png"),
        ("ms_webp", "kleiber_12mp_4000x3000.webp", "image/webp"),
    ];
    let mut results: Vec<(&str, Option<f64>)> = Vec::new();
    for (key, file, declared) in cases {
        let bytes = std::fs::read(photos.join(file))?;
        // One warm-up run, which also shows what comes out.
        let out = process(&bytes, declared, &limits)?;
        let sizes: Vec<String> = out
            .variants
            .iter()
            .map(|v| format!("{} {}x{} {} B", v.name, v.width, v.height, v.jpeg.len()))
            .collect();
        let ms = median_ms(runs, || {
            let out = process(&bytes, declared, &limits);
            std::hint::black_box(out).map(|_| ())
        })?;
        println!("{file}: {ms:.1} ms median of {runs} ({})", sizes.join(", "));
        results.push((key, Some(ms)));
    }

    let twelve = photos.join("kleiber_12mp_4000x3000.jpg");
    let vips = match vips_three_sizes(&twelve, runs) {
        Ok(ms) => {
            println!(
                "vipsthumbnail, the same three sizes of {}: {ms:.1} ms median of {runs}",
                file_name(&twelve)
            );
            Some(ms)
        }
        Err(why) => {
            println!("vipsthumbnail NOT MEASURED: {why}");
            None
        }
    };
    let ratio = match (results.first().and_then(|r| r.1), vips) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
        _ => None,
    };
    if let Some(ratio) = ratio {
        println!("ratio_to_vips: {ratio:.3} (target <= 0.35)");
    }
    results.push(("vips_ms_12mp_jpeg", vips));
    results.push(("ratio_to_vips", ratio));
    let json: Vec<String> = results
        .iter()
        .map(|(key, value)| match value {
            Some(v) => format!("\"{key}\": {v:.3}"),
            None => format!("\"{key}\": null"),
        })
        .collect();
    println!("{{{}}}", json.join(", "));
    Ok(())
}

fn median_ms(
    runs: usize,
    mut f: impl FnMut() -> Result<(), shutter_media::MediaError>,
) -> Result<f64, shutter_media::MediaError> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `vipsthumbnail` run three times — 1080 wide, 640 wide, 150×150 centre crop, quality 82
/// — timed together; the median over `runs`.
fn vips_three_sizes(input: &Path, runs: usize) -> Result<f64, String> {
    let out = std::env::temp_dir().join(format!("shutter_bench_{}", std::process::id()));
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let invocations: [(&[&str], &str); 3] = [
        (&["-s", "1080x"], "w1080"),
        (&["-s", "640x"], "w640"),
        (&["-s", "150x150", "--smartcrop", "centre"], "thumb"),
    ];
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        for (args, name) in invocations {
            let target = out.join(format!("{name}.jpg[Q=82,strip]"));
            let status = Command::new("vipsthumbnail")
                .arg(input)
                .args(args)
                .arg("-o")
                .arg(&target)
                .env("VIPS_CONCURRENCY", "1")
                .status()
                .map_err(|e| format!("cannot run vipsthumbnail ({e}); install libvips-tools"))?;
            if !status.success() {
                return Err(format!("vipsthumbnail failed: {status}"));
            }
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_dir_all(&out);
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
