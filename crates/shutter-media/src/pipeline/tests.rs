//! The pipeline on the real photographs and hostile files of `shared/testdata`: sizes, crops,
//! orientation, colour, stripped metadata, blurhash, and the error code of each hostile file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::*;
use crate::sniff::{IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP};

fn testdata(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn run(relative: &str, declared: &str) -> Result<Processed, MediaError> {
    process(&testdata(relative), declared, &Limits::default())
}

/// Decodes a variant back to RGB with libjpeg-turbo.
fn decode_jpeg(jpeg: &[u8]) -> Rgb {
    let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap();
    assert_eq!(image.pitch, image.width * 3);
    Rgb {
        width: image.width as u32,
        height: image.height as u32,
        pixels: image.pixels,
    }
}

fn mean(image: &Rgb, x0: u32, y0: u32, x1: u32, y1: u32) -> [f64; 3] {
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            let at = ((y * image.width + x) * 3) as usize;
            for (total, &value) in sum.iter_mut().zip(&image.pixels[at..at + 3]) {
                *total += f64::from(value);
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

fn whole_mean(image: &Rgb) -> [f64; 3] {
    mean(image, 0, 0, image.width, image.height)
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|c| (a[c] - b[c]).abs()).fold(0.0, f64::max)
}

/// Every photograph: (file, declared type, displayed width, displayed height).
const PHOTOS: &[(&str, &str, u32, u32)] = &[
    ("kleiber_6028x3391.jpg", IMAGE_JPEG, 6028, 3391),
    ("kleiber_12mp_4000x3000.jpg", IMAGE_JPEG, 4000, 3000),
    ("kleiber_24mp_6000x4000.jpg", IMAGE_JPEG, 6000, 4000),
    ("kleiber_12mp_4000x3000.webp", IMAGE_WEBP, 4000, 3000),
    ("kleiber_1080x1080.jpg", IMAGE_JPEG, 1080, 1080),
    ("path_2560x1600.jpg", IMAGE_JPEG, 2560, 1600),
    ("path_2560x1600.png", IMAGE_PNG, 2560, 1600),
    ("path_progressive_1600x1000.jpg", IMAGE_JPEG, 1600, 1000),
    ("path_cmyk_1600x1000.jpg", IMAGE_JPEG, 1600, 1000),
    ("path_gray_1200x750.png", IMAGE_PNG, 1200, 750),
    ("path_exif_orientation6_gps.jpg", IMAGE_JPEG, 1000, 1600),
    ("onestandsout_2560x1600.jpg", IMAGE_JPEG, 2560, 1600),
    (
        "onestandsout_16bit_alpha_1200x750.png",
        IMAGE_PNG,
        1200,
        750,
    ),
    ("onestandsout_1200x750.webp", IMAGE_WEBP, 1200, 750),
];

/// Rounded `h * width / w`, as the variants are sized.
fn fitted_height(w: u32, h: u32, width: u32) -> u32 {
    if w <= width {
        h
    } else {
        ((u64::from(h) * u64::from(width) + u64::from(w) / 2) / u64::from(w)) as u32
    }
}

/// Asserts a JPEG carries no EXIF, XMP or any other APP1 segment: walks every marker
/// segment before the scan, and has a real EXIF parser look at the whole file.
fn assert_no_metadata(name: &str, jpeg: &[u8]) {
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF, "{name}: marker expected at {pos}");
        let marker = jpeg[pos + 1];
        if marker == 0xDA {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        assert_ne!(marker, 0xE1, "{name}: an APP1 (EXIF/XMP) segment");
        assert!(
            marker == 0xE0 || !(0xE1..=0xEF).contains(&marker),
            "{name}: APP{} segment",
            marker - 0xE0
        );
        pos += 2 + len;
    }
    // No trace of the original's metadata in the headers either (the entropy-coded data
    // after them is noise where any short string may turn up).
    let headers = &jpeg[..pos];
    for needle in [
        &b"Exif"[..],
        b"http://ns.adobe.com/xap",
        b"GPS",
        b"ICC_PROFILE",
    ] {
        assert!(
            !headers.windows(needle.len()).any(|w| w == needle),
            "{name}: {:?} found",
            String::from_utf8_lossy(needle)
        );
    }
    let parsed = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg));
    assert!(
        matches!(parsed, Err(exif::Error::NotFound(_))),
        "{name}: EXIF found: {:?}",
        parsed.map(|e| e.fields().map(|f| f.tag).collect::<Vec<_>>())
    );
}

#[test]
fn the_exif_parser_sees_the_gps_of_the_original() {
    // The check below is only worth something if the parser finds what is there.
    let original = testdata("photos/path_exif_orientation6_gps.jpg");
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(&original))
        .unwrap();
    assert!(exif
        .get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
        .is_some());
    assert!(exif.get_field(exif::Tag::Make, exif::In::PRIMARY).is_some());
}

#[test]
fn every_photo_gives_its_variants_at_the_right_sizes() {
    for &(file, declared, width, height) in PHOTOS {
        let out = run(&format!("photos/{file}"), declared).unwrap();
        assert_eq!((out.width, out.height), (width, height), "{file}");
        let names: Vec<_> = out.variants.iter().map(|v| v.name).collect();
        assert_eq!(names, ["thumb", "w640", "w1080"], "{file}");
        let expected = [
            (150, 150),
            (width.min(640), fitted_height(width, height, 640)),
            (width.min(1080), fitted_height(width, height, 1080)),
        ];
        for (variant, size) in out.variants.iter().zip(expected) {
            assert_eq!(
                (variant.width, variant.height),
                size,
                "{file} {}",
                variant.name
            );
            let decoded = decode_jpeg(&variant.jpeg);
            assert_eq!(
                (decoded.width, decoded.height),
                size,
                "{file} {} as decoded",
                variant.name
            );
            assert_no_metadata(&format!("{file} {}", variant.name), &variant.jpeg);
        }
        // The blurhash decodes, and to the colours of the image.
        let (bw, bh) = (32, 32 * height / width);
        let pixels = blurhash::decode(&out.blurhash, bw, bh, 1.0).unwrap();
        assert_eq!(pixels.len(), (bw * bh * 4) as usize, "{file}");
        let rgb: Vec<u8> = pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let blurred = Rgb {
            width: bw,
            height: bh,
            pixels: rgb,
        };
        let w640 = decode_jpeg(&out.variants[1].jpeg);
        let d = distance(whole_mean(&blurred), whole_mean(&w640));
        assert!(d < 20.0, "{file}: blurhash mean colour off by {d}");
    }
}

#[test]
fn the_thumb_is_the_centre_square() {
    // Landscape: the thumb is the middle of the image, not a squeezed whole.
    let out = run("photos/path_2560x1600.jpg", IMAGE_JPEG).unwrap();
    let thumb = decode_jpeg(&out.variants[0].jpeg);
    let w1080 = decode_jpeg(&out.variants[2].jpeg);
    // The centre square of w1080 (1080×675): x from 202.5 to 877.5.
    let centre = crate::pipeline::ops::tests_support::crop_resize(&w1080, 150);
    let d = distance(whole_mean(&thumb), whole_mean(&centre));
    assert!(d < 3.0, "thumb differs from the centre square by {d}");
    // And its left column matches the centre square's, not the image's left edge.
    let column = |img: &Rgb| mean(img, 0, 0, 4, img.height);
    assert!(distance(column(&thumb), column(&centre)) < 12.0);
}

#[test]
fn small_images_are_never_upscaled() {
    // 120×80: w640 and w1080 keep the size; the thumb is the 80×80 centre.
    let small = crate::pipeline::ops::tests_support::jpeg_of(&Rgb {
        width: 120,
        height: 80,
        pixels: (0..120 * 80)
            .flat_map(|i| [(i % 120) as u8, 0, 0])
            .collect(),
    });
    let out = process(&small, IMAGE_JPEG, &Limits::default()).unwrap();
    let sizes: Vec<_> = out.variants.iter().map(|v| (v.width, v.height)).collect();
    assert_eq!(sizes, [(80, 80), (120, 80), (120, 80)]);
    // The thumb's left edge is column 20 of the original.
    let thumb = decode_jpeg(&out.variants[0].jpeg);
    let left = mean(&thumb, 0, 0, 1, 80)[0];
    assert!((left - 20.0).abs() < 6.0, "left edge red {left}");
}

#[test]
fn orientation_6_variants_are_portrait_and_turned_clockwise() {
    let out = run("photos/path_exif_orientation6_gps.jpg", IMAGE_JPEG).unwrap();
    assert_eq!((out.width, out.height), (1000, 1600));
    let sizes: Vec<_> = out.variants.iter().map(|v| (v.width, v.height)).collect();
    assert_eq!(sizes, [(150, 150), (640, 1024), (1000, 1600)]);

    // The same scene stored upright, turned clockwise here by plain index arithmetic, must
    // be the oriented thumb — and turning it any other way must not.
    let upright_thumb = decode_jpeg(
        &run("photos/path_progressive_1600x1000.jpg", IMAGE_JPEG)
            .unwrap()
            .variants[0]
            .jpeg,
    );
    let turned_thumb = decode_jpeg(&out.variants[0].jpeg);
    let n = 150usize;
    let turn = |img: &Rgb, clockwise_quarters: u32| -> Rgb {
        let mut pixels = vec![0u8; n * n * 3];
        for y in 0..n {
            for x in 0..n {
                let (sx, sy) = match clockwise_quarters {
                    0 => (x, y),
                    1 => (y, n - 1 - x),
                    2 => (n - 1 - x, n - 1 - y),
                    _ => (n - 1 - y, x),
                };
                let (s, d) = ((sy * n + sx) * 3, (y * n + x) * 3);
                pixels[d..d + 3].copy_from_slice(&img.pixels[s..s + 3]);
            }
        }
        Rgb {
            width: n as u32,
            height: n as u32,
            pixels,
        }
    };
    let difference = |a: &Rgb, b: &Rgb| {
        let total: u64 = a
            .pixels
            .iter()
            .zip(&b.pixels)
            .map(|(&p, &q)| u64::from(p.abs_diff(q)))
            .sum();
        total as f64 / a.pixels.len() as f64
    };
    let by_turn: Vec<f64> = (0..4)
        .map(|q| difference(&turn(&upright_thumb, q), &turned_thumb))
        .collect();
    assert!(by_turn[1] < 6.0, "clockwise turn differs by {by_turn:?}");
    for q in [0, 2, 3] {
        assert!(
            by_turn[q] > 2.0 * by_turn[1],
            "turn {q} as close as the right one: {by_turn:?}"
        );
    }
}

#[test]
fn cmyk_comes_out_in_the_colours_of_the_rgb_original() {
    let cmyk = run("photos/path_cmyk_1600x1000.jpg", IMAGE_JPEG).unwrap();
    let rgb = run("photos/path_2560x1600.jpg", IMAGE_JPEG).unwrap();
    let (a, b) = (
        decode_jpeg(&cmyk.variants[0].jpeg),
        decode_jpeg(&rgb.variants[0].jpeg),
    );
    let d = distance(whole_mean(&a), whole_mean(&b));
    assert!(
        d < 8.0,
        "CMYK thumb mean {:?} vs RGB {:?}",
        whole_mean(&a),
        whole_mean(&b)
    );
}

#[test]
fn alpha_is_composited_onto_white() {
    // 60 % alpha over white is lighter than the opaque JPEG of the same scene.
    let alpha = run("photos/onestandsout_16bit_alpha_1200x750.png", IMAGE_PNG).unwrap();
    let opaque = run("photos/onestandsout_2560x1600.jpg", IMAGE_JPEG).unwrap();
    let a = whole_mean(&decode_jpeg(&alpha.variants[1].jpeg));
    let o = whole_mean(&decode_jpeg(&opaque.variants[1].jpeg));
    for c in 0..3 {
        let expected = o[c] * 0.6 + 255.0 * 0.4;
        assert!(
            (a[c] - expected).abs() < 15.0,
            "channel {c}: {} vs expected {expected}",
            a[c]
        );
    }
}

#[test]
fn hostile_files_fail_with_their_codes() {
    let cases = [
        ("hostile/truncated.jpg", IMAGE_JPEG, "content_mismatch"),
        ("hostile/text_named.jpg", IMAGE_JPEG, "content_mismatch"),
        ("hostile/empty.jpg", IMAGE_JPEG, "content_mismatch"),
        ("hostile/png_named.jpg", IMAGE_JPEG, "content_mismatch"),
        ("hostile/bad_crc.png", IMAGE_PNG, "content_mismatch"),
        ("hostile/bomb_20000x20000.png", IMAGE_PNG, "image_too_large"),
        (
            "hostile/header_bomb_65000x65000.jpg",
            IMAGE_JPEG,
            "image_too_large",
        ),
        (
            "hostile/animated.gif",
            "image/gif",
            "unsupported_media_type",
        ),
        (
            "hostile/polyglot_gif_html.gif",
            "image/gif",
            "unsupported_media_type",
        ),
        (
            "hostile/script.svg",
            "image/svg+xml",
            "unsupported_media_type",
        ),
        // Declared as a post type, but the content is something else.
        ("hostile/animated.gif", IMAGE_PNG, "content_mismatch"),
        ("hostile/script.svg", IMAGE_JPEG, "content_mismatch"),
        // A real photo under the wrong type.
        ("photos/path_2560x1600.png", IMAGE_WEBP, "content_mismatch"),
    ];
    for (file, declared, code) in cases {
        let err = run(file, declared).unwrap_err();
        assert_eq!(err.code(), code, "{file} as {declared}: {err}");
    }
}

#[test]
fn bombs_are_refused_before_any_decoder_runs() {
    let before = DECODES.with(|n| n.get());
    for (file, declared, pixels) in [
        ("hostile/bomb_20000x20000.png", IMAGE_PNG, 400_000_000),
        (
            "hostile/header_bomb_65000x65000.jpg",
            IMAGE_JPEG,
            4_225_000_000,
        ),
    ] {
        assert_eq!(
            run(file, declared),
            Err(MediaError::ImageTooLarge {
                pixels,
                max: 100_000_000
            })
        );
    }
    assert_eq!(DECODES.with(|n| n.get()), before, "a decoder ran");

    // The limit is the caller's: a 12 MP photo under a 10 MP limit is refused too, and at
    // the limit exactly it is not.
    let photo = testdata("photos/kleiber_12mp_4000x3000.jpg");
    let err = process(
        &photo,
        IMAGE_JPEG,
        &Limits {
            max_pixels: 10_000_000,
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    assert_eq!(DECODES.with(|n| n.get()), before, "a decoder ran");
    process(
        &photo,
        IMAGE_JPEG,
        &Limits {
            max_pixels: 12_000_000,
        },
    )
    .unwrap();
    assert_eq!(DECODES.with(|n| n.get()), before + 1);
}

#[test]
fn a_header_that_lies_to_the_probe_fails_instead_of_allocating() {
    // A JPEG whose first frame header says 100×100 followed by a real 1080×1080 image: the
    // probe sees 100×100; libjpeg sees the first frame header too, but the data does not
    // fit it, so the decode fails — it never gets a buffer sized for anything else.
    let real = testdata("photos/kleiber_1080x1080.jpg");
    let mut liar = real.clone();
    let sof = liar.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    liar[sof + 5..sof + 9].copy_from_slice(&[0, 100, 0, 100]);
    match process(&liar, IMAGE_JPEG, &Limits::default()) {
        Ok(out) => assert_eq!((out.width, out.height), (100, 100)),
        Err(e) => assert_eq!(e.code(), "content_mismatch"),
    }
    // A PNG whose IHDR is patched (with a valid CRC) cannot get past the probe at one size
    // and decode at another: both read the same IHDR. A WebP VP8X canvas that disagrees
    // with its frame is refused by the decoder.
}

#[test]
fn declared_types_are_normalised() {
    let bytes = testdata("photos/kleiber_1080x1080.jpg");
    for declared in [
        "image/jpeg",
        "IMAGE/JPEG",
        "image/jpeg; charset=binary",
        " image/jpeg ",
    ] {
        process(&bytes, declared, &Limits::default()).unwrap();
    }
    let err = process(&bytes, "image/jpg", &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "unsupported_media_type");
}

#[test]
fn scaled_jpeg_decoding_picks_the_smallest_covering_scale() {
    use crate::probe::ImageInfo;
    let info = |width, height, orientation| ImageInfo {
        content_type: IMAGE_JPEG,
        width,
        height,
        orientation,
    };
    assert_eq!(needed_stored_size(&info(4000, 3000, 1)), (1080, 150));
    assert_eq!(needed_stored_size(&info(1600, 1000, 6)), (150, 1000));
    assert_eq!(needed_stored_size(&info(500, 100, 1)), (500, 100));
    assert_eq!(needed_stored_size(&info(100, 5000, 1)), (100, 100));
}

/// `RIFF <size> WEBP` around `chunks` (fourcc, payload), padded to even lengths.
fn riff_webp(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
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

/// A VP8X payload: flags, then the canvas size.
fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut v = vec![flags, 0, 0, 0];
    v.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    v.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    v
}

/// The chunk `fourcc` of a WebP file, payload only.
fn webp_chunk<'a>(webp: &'a [u8], fourcc: &[u8; 4]) -> &'a [u8] {
    let mut pos = 12;
    loop {
        let len = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if &webp[pos..pos + 4] == fourcc {
            return &webp[pos + 8..pos + 8 + len];
        }
        pos += 8 + len + len % 2;
    }
}

/// A small lossless WebP (image-webp's encoder), with or without alpha.
fn lossless_webp(width: u32, height: u32, alpha: Option<u8>) -> Vec<u8> {
    let (data, color) = match alpha {
        Some(a) => (
            [40, 120, 200, a].repeat((width * height) as usize),
            image_webp::ColorType::Rgba8,
        ),
        None => (
            [40, 120, 200].repeat((width * height) as usize),
            image_webp::ColorType::Rgb8,
        ),
    };
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&data, width, height, color)
        .unwrap();
    out
}

#[test]
fn lossy_webp_with_alpha_is_composited_onto_white() {
    // The real lossy photo's VP8 frame under an uncompressed ALPH chunk of 60 % alpha.
    let photo = testdata("photos/onestandsout_1200x750.webp");
    let mut alph = vec![0u8]; // no compression, filtering or pre-processing
    alph.resize(1 + 1200 * 750, 153);
    let with_alpha = riff_webp(&[
        (b"VP8X", &vp8x(0x10, 1200, 750)),
        (b"ALPH", &alph),
        (b"VP8 ", webp_chunk(&photo, b"VP8 ")),
    ]);
    let opaque = process(&photo, IMAGE_WEBP, &Limits::default()).unwrap();
    let alpha = process(&with_alpha, IMAGE_WEBP, &Limits::default()).unwrap();
    assert_eq!((alpha.width, alpha.height), (1200, 750));
    let a = whole_mean(&decode_jpeg(&alpha.variants[1].jpeg));
    let o = whole_mean(&decode_jpeg(&opaque.variants[1].jpeg));
    for c in 0..3 {
        // The photo carries an ICC profile that the alpha version lacks: a few levels apart.
        let expected = o[c] * 0.6 + 255.0 * 0.4;
        assert!(
            (a[c] - expected).abs() < 8.0,
            "channel {c}: {} vs expected {expected}",
            a[c]
        );
    }
}

#[test]
fn lossless_webp_with_and_without_alpha_keeps_its_colour() {
    let opaque = process(&lossless_webp(64, 48, None), IMAGE_WEBP, &Limits::default()).unwrap();
    let m = whole_mean(&decode_jpeg(&opaque.variants[1].jpeg));
    assert!(distance(m, [40.0, 120.0, 200.0]) < 3.0, "{m:?}");
    // Fully transparent is white; half transparent halfway there.
    let clear = process(
        &lossless_webp(64, 48, Some(0)),
        IMAGE_WEBP,
        &Limits::default(),
    )
    .unwrap();
    let m = whole_mean(&decode_jpeg(&clear.variants[1].jpeg));
    assert!(distance(m, [255.0; 3]) < 3.0, "{m:?}");
    let half = process(
        &lossless_webp(64, 48, Some(128)),
        IMAGE_WEBP,
        &Limits::default(),
    )
    .unwrap();
    let m = whole_mean(&decode_jpeg(&half.variants[1].jpeg));
    assert!(distance(m, [147.0, 187.0, 227.0]) < 3.0, "{m:?}");
}

#[test]
fn animated_webp_is_refused_as_unsupported() {
    // Two frames of a lossless still, each a whole-canvas ANMF.
    let still = lossless_webp(32, 24, None);
    let mut frame = vec![0u8; 6]; // x/2, y/2
    frame.extend_from_slice(&31u32.to_le_bytes()[..3]);
    frame.extend_from_slice(&23u32.to_le_bytes()[..3]);
    frame.extend_from_slice(&[100, 0, 0, 0]); // 100 ms, no blending, no disposal
    let vp8l = webp_chunk(&still, b"VP8L");
    frame.extend_from_slice(b"VP8L");
    frame.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    frame.extend_from_slice(vp8l);
    if vp8l.len() % 2 == 1 {
        frame.push(0);
    }
    let animated = riff_webp(&[
        (b"VP8X", &vp8x(0x02, 32, 24)),
        (b"ANIM", &[255, 255, 255, 255, 0, 0]),
        (b"ANMF", &frame),
        (b"ANMF", &frame),
    ]);
    let err = process(&animated, IMAGE_WEBP, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "unsupported_media_type", "{err}");
}

#[test]
fn a_webp_canvas_that_disagrees_with_its_frame_is_refused() {
    // The VP8X canvas says 1100 wide, the VP8 frame 1200: the probe reads the canvas, the
    // decoder finds the mismatch.
    let mut photo = testdata("photos/onestandsout_1200x750.webp");
    assert_eq!(&photo[12..16], b"VP8X");
    photo[24..27].copy_from_slice(&1099u32.to_le_bytes()[..3]);
    let err = process(&photo, IMAGE_WEBP, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "content_mismatch", "{err}");
}

#[test]
fn webp_header_bombs_are_refused_before_any_decoder_runs() {
    let before = DECODES.with(|n| n.get());
    // Lossy, lossless and extended headers claiming far more than the limit, with next to no
    // data behind them.
    let mut vp8 = vec![0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A];
    vp8.extend_from_slice(&16383u16.to_le_bytes());
    vp8.extend_from_slice(&16383u16.to_le_bytes());
    vp8.extend_from_slice(&[0; 16]);
    let bits: u32 = 16383 | (16383 << 14);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 16]);
    for bomb in [
        riff_webp(&[(b"VP8 ", &vp8)]),
        riff_webp(&[(b"VP8L", &vp8l)]),
        riff_webp(&[(b"VP8X", &vp8x(0x10, 1 << 24, 1 << 24)), (b"VP8 ", &vp8)]),
    ] {
        let err = process(&bomb, IMAGE_WEBP, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "image_too_large", "{err}");
    }
    assert_eq!(DECODES.with(|n| n.get()), before, "a decoder ran");
    // Within the limit but truncated: the decoder runs and fails cleanly.
    let mut small = vp8.clone();
    small[6..10].copy_from_slice(&[0xE8, 0x03, 0xE8, 0x03]); // 1000×1000
    let err = process(
        &riff_webp(&[(b"VP8 ", &small)]),
        IMAGE_WEBP,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "content_mismatch", "{err}");
}
