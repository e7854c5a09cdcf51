//! Hostile input through the whole pipeline: thousands of seeded mutations (bit flips,
//! overwrites, truncation, insertion, duplication) of small JPEG, PNG and WebP images run
//! through `process` with a 4 MP limit. None may panic, and the process's peak memory must
//! stay far below what the mutated headers claim (this file is its own test binary, so the
//! peak is this file's alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use shutter_media::{process, sniff, Limits};

const LIMITS: Limits = Limits {
    max_pixels: 4_000_000,
};

fn testdata(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// One to four damages; positions favour the first KiB, where the headers are.
fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.byte());
            continue;
        }
        let at = if rng.below(2) == 0 {
            rng.below(b.len().min(1024))
        } else {
            rng.below(b.len())
        };
        match rng.below(7) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.byte(),
            2 => {
                // A "interesting" 16-bit value: lengths and dimensions live in these.
                let v: u16 = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, 0x0100][rng.below(7)];
                let end = (at + 2).min(b.len());
                b[at..end].copy_from_slice(&v.to_be_bytes()[..end - at]);
            }
            3 => b.truncate(at),
            4 => {
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.byte()).collect();
                b.splice(at..at, extra);
            }
            5 => {
                let len = rng.below(64).min(b.len() - at);
                let chunk = b[at..at + len].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, chunk);
            }
            _ => {
                let len = 1 + rng.below(32);
                let end = (at + len).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}

/// Small images of every kind the pipeline reads, made from a real photo: baseline,
/// progressive, grayscale and CMYK JPEG, a JPEG carrying the EXIF/XMP of the orientation
/// test photo, PNG in RGB, gray, 16-bit RGBA and palette form, lossless WebP with and
/// without alpha and with metadata (VP8X), plus the real lossy WebP.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    // A 160×100 RGB image: the thumb of a real photo is 150×150, so take w640 of a small
    // photo and shrink it with the pipeline's own output as the source.
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let thumb = process(&photo, "image/jpeg", &Limits::default())
        .unwrap()
        .variants
        .into_iter()
        .find(|v| v.name == "thumb")
        .unwrap();
    let rgb = turbojpeg::decompress(&thumb.jpeg, turbojpeg::PixelFormat::RGB).unwrap();
    let (w, h) = (rgb.width, rgb.height);
    let pixels = rgb.pixels;
    assert_eq!(pixels.len(), w * h * 3);

    let jpeg = |progressive: bool, subsamp: turbojpeg::Subsamp| {
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(80).unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(progressive).unwrap();
        c.compress_to_vec(turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        })
        .unwrap()
    };
    let baseline = jpeg(false, turbojpeg::Subsamp::Sub2x2);
    let progressive = jpeg(true, turbojpeg::Subsamp::Sub2x1);
    let gray = jpeg(false, turbojpeg::Subsamp::Gray);
    let cmyk = {
        let cmyk: Vec<u8> = pixels
            .chunks_exact(3)
            .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0])
            .collect();
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(80).unwrap();
        c.set_subsamp(turbojpeg::Subsamp::None).unwrap();
        c.compress_to_vec(turbojpeg::Image {
            pixels: cmyk.as_slice(),
            width: w,
            pitch: w * 4,
            height: h,
            format: turbojpeg::PixelFormat::CMYK,
        })
        .unwrap()
    };
    // The EXIF (orientation 6, GPS) and XMP segments of the test photo, spliced after SOI.
    let with_exif = {
        let donor = testdata("photos/path_exif_orientation6_gps.jpg");
        let mut segments = Vec::new();
        let mut pos = 2;
        while donor[pos] == 0xFF && donor[pos + 1] != 0xDB {
            let len = usize::from(u16::from_be_bytes([donor[pos + 2], donor[pos + 3]]));
            if donor[pos + 1] == 0xE1 {
                segments.extend_from_slice(&donor[pos..pos + 2 + len]);
            }
            pos += 2 + len;
        }
        let mut out = baseline[..2].to_vec();
        out.extend_from_slice(&segments);
        out.extend_from_slice(&baseline[2..]);
        out
    };

    let png = |color: png::ColorType, depth: png::BitDepth, data: &[u8], palette: Option<&[u8]>| {
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, w as u32, h as u32);
        e.set_color(color);
        e.set_depth(depth);
        if let Some(p) = palette {
            e.set_palette(p.to_vec());
        }
        let mut writer = e.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    };
    let png_rgb = png(png::ColorType::Rgb, png::BitDepth::Eight, &pixels, None);
    let luma: Vec<u8> = pixels.chunks_exact(3).map(|p| p[1]).collect();
    let png_gray = png(png::ColorType::Grayscale, png::BitDepth::Eight, &luma, None);
    let rgba16: Vec<u8> = pixels
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| {
            let a = (i % 256) as u8;
            [p[0], p[0], p[1], p[1], p[2], p[2], a, a]
        })
        .collect();
    let png_rgba16 = png(png::ColorType::Rgba, png::BitDepth::Sixteen, &rgba16, None);
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    let png_indexed = png(
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        &luma,
        Some(&palette),
    );

    let webp = |data: &[u8], color: image_webp::ColorType, exif: bool| {
        let mut out = Vec::new();
        let mut e = image_webp::WebPEncoder::new(&mut out);
        if exif {
            e.set_exif_metadata(b"MM\0*\0\0\0\x08\0\0".to_vec());
        }
        e.encode(data, w as u32, h as u32, color).unwrap();
        out
    };
    let rgba8: Vec<u8> = pixels
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i % 256) as u8])
        .collect();
    let webp_rgb = webp(&pixels, image_webp::ColorType::Rgb8, false);
    let webp_rgba = webp(&rgba8, image_webp::ColorType::Rgba8, true);

    vec![
        ("baseline.jpg", baseline),
        ("progressive.jpg", progressive),
        ("gray.jpg", gray),
        ("cmyk.jpg", cmyk),
        ("exif.jpg", with_exif),
        ("rgb.png", png_rgb),
        ("gray.png", png_gray),
        ("rgba16.png", png_rgba16),
        ("indexed.png", png_indexed),
        ("rgb.webp", webp_rgb),
        ("rgba_exif.webp", webp_rgba),
    ]
}

/// Rewrites the CRC of every complete PNG chunk, so that damage reaches the decompressor
/// and the unfiltering instead of stopping at the first checksum.
fn fix_png_crcs(b: &mut [u8]) {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }
    let mut pos = 8;
    while pos + 12 <= b.len() {
        let len = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let Some(end) = (pos + 8).checked_add(len) else {
            return;
        };
        if end + 4 > b.len() {
            return;
        }
        let crc = crc32(&b[pos + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
}

/// Peak resident memory of this process so far (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn thousands_of_mutated_images_never_panic_nor_balloon() {
    let corpus = corpus();
    let mut cases: Vec<(&str, Vec<u8>, usize)> = corpus
        .into_iter()
        .map(|(name, bytes)| (name, bytes, 500))
        .collect();
    // The real lossy WebP (1200×750) is slower to decode: fewer rounds.
    cases.push((
        "onestandsout_1200x750.webp",
        testdata("photos/onestandsout_1200x750.webp"),
        80,
    ));

    let mut total = 0;
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for (name, original, rounds) in &cases {
        let declared = sniff(original).unwrap();
        // Unmutated, every image processes.
        let clean = process(original, declared, &LIMITS);
        assert!(clean.is_ok(), "{name}: {clean:?}");
        for round in 0..*rounds {
            let seed = 0x5EED_0000 + round as u64 * 7919 + name.len() as u64;
            let mut rng = Rng(seed);
            let mut mutated = mutate(original, &mut rng);
            if declared == "image/png" && round % 2 == 0 {
                fix_png_crcs(&mut mutated);
            }
            let result = catch_unwind(AssertUnwindSafe(|| process(&mutated, declared, &LIMITS)));
            match result {
                Ok(Ok(out)) => {
                    assert!(!out.variants.is_empty());
                    *outcomes.entry("ok").or_default() += 1;
                }
                Ok(Err(e)) => *outcomes.entry(e.code()).or_default() += 1,
                Err(_) => panic!("{name}: process panicked on round {round} (seed {seed:#x})"),
            }
            total += 1;
        }
    }
    eprintln!("{total} mutations: {outcomes:?}");
    assert!(total >= 5000, "only {total} mutations");
    // Both outcomes happen: the mutations are neither all harmless nor all fatal.
    assert!(
        outcomes.get("ok").copied().unwrap_or(0) > 100,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("content_mismatch").copied().unwrap_or(0) > 100,
        "{outcomes:?}"
    );

    // With a 4 MP limit nothing needs more than a few tens of MiB; a decoder trusting a
    // mutated header (up to 65535×65535 in a JPEG) would need gigabytes.
    if let Some(peak) = peak_rss() {
        assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
    }
}

#[test]
fn bombs_are_refused_without_their_memory() {
    for (file, declared) in [
        ("hostile/bomb_20000x20000.png", "image/png"),
        ("hostile/header_bomb_65000x65000.jpg", "image/jpeg"),
    ] {
        let err = process(&testdata(file), declared, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "image_too_large", "{file}");
    }
    // 400 MP would be 1.2 GB of RGB; this whole binary stays far below.
    if let Some(peak) = peak_rss() {
        assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
    }
}
