//! Times `shutter_media::process` on the shared test photos, one thread, median of N runs
//! after one warm-up run (the figures of the harness's `media` scenario), then the WebP
//! decoders side by side on the same files: libwebp (`webpx`, what the pipeline uses) and the
//! pure-Rust `image-webp` (what it used before), with how far their pixels are apart.
//!
//! `cargo run --release -p shutter-media --example pipeline_bench [-- RUNS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use shutter_media::{process, Limits};

fn photo(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/photos")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `RIFF <size> WEBP` around `chunks`.
fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (fourcc, payload) in chunks {
        body.extend_from_slice(*fourcc);
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The image chunk (`VP8 ` or `VP8L`) of a still WebP: fourcc and payload.
fn image_chunk(webp: &[u8]) -> ([u8; 4], &[u8]) {
    let mut pos = 12;
    loop {
        let fourcc: [u8; 4] = webp[pos..pos + 4].try_into().unwrap();
        let len = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if &fourcc == b"VP8 " || &fourcc == b"VP8L" {
            return (fourcc, &webp[pos + 8..pos + 8 + len]);
        }
        pos += 8 + len + len % 2;
    }
}

fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut v = vec![flags, 0, 0, 0];
    v.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    v.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    v
}

/// A lossy image with an uncompressed ALPH chunk: a horizontal alpha ramp.
fn lossy_with_alpha(lossy: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (fourcc, vp8) = image_chunk(lossy);
    assert_eq!(&fourcc, b"VP8 ");
    let mut alph = vec![0u8]; // no compression, no filtering, no pre-processing
    alph.extend((0..height).flat_map(|_| (0..width).map(|x| (x * 255 / width) as u8)));
    riff(&[
        (b"VP8X", &vp8x(0x10, width, height)),
        (b"ALPH", &alph),
        (b"VP8 ", vp8),
    ])
}

/// A two-frame animation of a lossless still.
fn animated(still: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (fourcc, payload) = image_chunk(still);
    let mut frame = Vec::new();
    frame.extend_from_slice(&[0; 6]); // x/2, y/2
    frame.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    frame.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    frame.extend_from_slice(&[100, 0, 0, 0]); // duration 100 ms, no blend, no dispose
    frame.extend_from_slice(&fourcc);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        frame.push(0);
    }
    riff(&[
        (b"VP8X", &vp8x(0x02 | 0x10, width, height)),
        (b"ANIM", &[255, 255, 255, 255, 0, 0]),
        (b"ANMF", &frame),
        (b"ANMF", &frame),
    ])
}

/// The previous decoder's path: `image-webp` into a buffer of its output size.
fn decode_image_webp(bytes: &[u8]) -> Result<(bool, Vec<u8>), String> {
    let mut d = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    if d.is_animated() {
        return Err("animated".to_owned());
    }
    let mut out = vec![0u8; d.output_buffer_size().unwrap()];
    d.read_image(&mut out).map_err(|e| e.to_string())?;
    Ok((d.has_alpha(), out))
}

/// The pipeline's path: libwebp's simple API into a buffer, through `webpx`.
fn decode_libwebp(bytes: &[u8]) -> Result<(bool, Vec<u8>), String> {
    let d = webpx::Decoder::new(bytes)
        .map_err(|e| e.error().to_string())?
        .config(webpx::DecoderConfig::new().limits(webpx::Limits::none()));
    let info = d.info().clone();
    if info.has_animation {
        return Err("animated".to_owned());
    }
    let channels = if info.has_alpha { 4 } else { 3 };
    let mut out = vec![0u8; (info.width * info.height * channels) as usize];
    let stride = info.width * channels;
    if info.has_alpha {
        d.decode_rgba_into(&mut out, stride)
    } else {
        d.decode_rgb_into(&mut out, stride)
    }
    .map_err(|e| e.error().to_string())?;
    Ok((info.has_alpha, out))
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS is a number"))
        .unwrap_or(15);
    let limits = Limits::default();
    println!("process(), median of {runs}:");
    for (figure, file, declared) in [
        ("ms_12mp_jpeg", "kleiber_12mp_4000x3000.jpg", "image/jpeg"),
        ("ms_24mp_jpeg", "kleiber_24mp_6000x4000.jpg", "image/jpeg"),
        ("ms_png", "path_2560x1600.png", "image/png"),
        ("ms_webp", "kleiber_12mp_4000x3000.webp", "image/webp"),
        ("ms_webp_1200", "onestandsout_1200x750.webp", "image/webp"),
    ] {
        let bytes = photo(file);
        process(&bytes, declared, &limits).unwrap();
        let ms = median_ms(runs, || {
            black_box(process(black_box(&bytes), declared, &limits).unwrap());
        });
        println!("  {figure:<14} {ms:8.2} ms  ({file})");
    }

    // The WebP files: the two real lossy photos, and made from them lossless (with and
    // without alpha), lossy with an alpha channel, and an animation.
    let big = photo("kleiber_12mp_4000x3000.webp");
    let small = photo("onestandsout_1200x750.webp");
    let (_, small_rgb) = decode_libwebp(&small).unwrap();
    let (_, big_rgb) = decode_libwebp(&big).unwrap();
    let lossless = |rgb: &[u8], w: u32, h: u32, alpha: bool| {
        let mut out = Vec::new();
        let (data, color) = if alpha {
            let rgba: Vec<u8> = rgb
                .chunks_exact(3)
                .enumerate()
                .flat_map(|(i, p)| [p[0], p[1], p[2], (i % 251) as u8])
                .collect();
            (rgba, image_webp::ColorType::Rgba8)
        } else {
            (rgb.to_vec(), image_webp::ColorType::Rgb8)
        };
        image_webp::WebPEncoder::new(&mut out)
            .encode(&data, w, h, color)
            .unwrap();
        out
    };
    let small_lossless = lossless(&small_rgb, 1200, 750, false);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("lossy 12 MP (kleiber .webp)", big.clone()),
        ("lossy 1200x750 (onestandsout)", small.clone()),
        ("lossy+alpha 1200x750", lossy_with_alpha(&small, 1200, 750)),
        (
            "lossless 12 MP (image-webp enc)",
            lossless(&big_rgb, 4000, 3000, false),
        ),
        ("lossless 1200x750", small_lossless.clone()),
        (
            "lossless+alpha 1200x750",
            lossless(&small_rgb, 1200, 750, true),
        ),
        ("animated 1200x750", animated(&small_lossless, 1200, 750)),
    ];
    println!("WebP decoders side by side, raw decode to RGB(A), median of {runs}:");
    println!(
        "  {:<32} {:>10} {:>10} {:>7}  pixels (max / mean abs difference)",
        "file", "image-webp", "libwebp", "speedup"
    );
    for (name, bytes) in &files {
        let (a, b) = (decode_image_webp(bytes), decode_libwebp(bytes));
        let (ra, rb) = match (&a, &b) {
            (Ok(x), Ok(y)) => (x, y),
            _ => {
                println!(
                    "  {name:<32} image-webp: {a:?}  libwebp: {b:?}",
                    a = a.as_ref().map(|_| "ok"),
                    b = b.as_ref().map(|_| "ok")
                );
                continue;
            }
        };
        assert_eq!(ra.0, rb.0, "{name}: alpha disagrees");
        assert_eq!(ra.1.len(), rb.1.len(), "{name}: sizes disagree");
        let diffs = ra.1.iter().zip(&rb.1).map(|(&p, &q)| p.abs_diff(q));
        let (max, sum) = diffs.fold((0u8, 0u64), |(m, s), d| (m.max(d), s + u64::from(d)));
        let mean = sum as f64 / ra.1.len() as f64;
        let t_a = median_ms(runs, || {
            black_box(decode_image_webp(black_box(bytes)).unwrap());
        });
        let t_b = median_ms(runs, || {
            black_box(decode_libwebp(black_box(bytes)).unwrap());
        });
        println!(
            "  {name:<32} {t_a:8.2}ms {t_b:8.2}ms {:6.2}x  {max} / {mean:.3}",
            t_a / t_b
        );
    }
}
