//! Probing the real photographs and hostile files of `shared/testdata`, synthetic headers of
//! the variants the photos do not cover, and thousands of mutated headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::*;
use crate::sniff::{sniff, IMAGE_GIF, IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP};

/// What the upload pipeline hands to `probe`: at most this much of the file.
const PREFIX: usize = 256 * 1024;

fn testdata(relative: &str) -> Vec<u8> {
    let path = testdata_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

fn prefix(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(PREFIX)]
}

fn info(content_type: &'static str, width: u32, height: u32, orientation: u8) -> ImageInfo {
    ImageInfo {
        content_type,
        width,
        height,
        orientation,
    }
}

/// Every photograph of the test data, as its README describes it.
const PHOTOS: &[(&str, &str, u32, u32, u8)] = &[
    ("kleiber_6028x3391.jpg", IMAGE_JPEG, 6028, 3391, 1),
    ("kleiber_12mp_4000x3000.jpg", IMAGE_JPEG, 4000, 3000, 1),
    ("kleiber_24mp_6000x4000.jpg", IMAGE_JPEG, 6000, 4000, 1),
    ("kleiber_12mp_4000x3000.webp", IMAGE_WEBP, 4000, 3000, 1),
    ("kleiber_1080x1080.jpg", IMAGE_JPEG, 1080, 1080, 1),
    ("path_2560x1600.jpg", IMAGE_JPEG, 2560, 1600, 1),
    ("path_2560x1600.png", IMAGE_PNG, 2560, 1600, 1),
    ("path_progressive_1600x1000.jpg", IMAGE_JPEG, 1600, 1000, 1),
    ("path_cmyk_1600x1000.jpg", IMAGE_JPEG, 1600, 1000, 1),
    ("path_gray_1200x750.png", IMAGE_PNG, 1200, 750, 1),
    ("path_exif_orientation6_gps.jpg", IMAGE_JPEG, 1600, 1000, 6),
    ("onestandsout_2560x1600.jpg", IMAGE_JPEG, 2560, 1600, 1),
    (
        "onestandsout_16bit_alpha_1200x750.png",
        IMAGE_PNG,
        1200,
        750,
        1,
    ),
    ("onestandsout_1200x750.webp", IMAGE_WEBP, 1200, 750, 1),
];

#[test]
fn every_photo_probes_as_its_readme_says() {
    for &(name, content_type, width, height, orientation) in PHOTOS {
        let bytes = testdata(&format!("photos/{name}"));
        assert_eq!(sniff(&bytes), Some(content_type), "{name}");
        assert_eq!(
            probe(prefix(&bytes)),
            Ok(info(content_type, width, height, orientation)),
            "{name}"
        );
    }
}

#[test]
fn the_photo_list_covers_the_whole_directory() {
    let mut on_disk: Vec<String> = std::fs::read_dir(testdata_dir().join("photos"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = PHOTOS.iter().map(|p| p.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn the_orientation_6_photo_displays_portrait() {
    let bytes = testdata("photos/path_exif_orientation6_gps.jpg");
    let found = probe(prefix(&bytes)).unwrap();
    assert_eq!((found.width, found.height), (1600, 1000));
    assert!(found.is_transposed());
    assert_eq!(
        (found.display_width(), found.display_height()),
        (1000, 1600)
    );

    let upright = info(IMAGE_JPEG, 1600, 1000, 1);
    assert_eq!(
        (upright.display_width(), upright.display_height()),
        (1600, 1000)
    );
    for orientation in 1..=8 {
        let oriented = info(IMAGE_JPEG, 30, 20, orientation);
        let expected = if orientation >= 5 { (20, 30) } else { (30, 20) };
        assert_eq!(
            (oriented.display_width(), oriented.display_height()),
            expected
        );
    }
}

#[test]
fn bombs_probe_at_their_claimed_size_without_decoding() {
    let png = probe(&testdata("hostile/bomb_20000x20000.png")).unwrap();
    assert_eq!(png, info(IMAGE_PNG, 20000, 20000, 1));
    assert_eq!(png.pixels(), 400_000_000);

    let jpeg = probe(&testdata("hostile/header_bomb_65000x65000.jpg")).unwrap();
    assert_eq!(jpeg, info(IMAGE_JPEG, 65000, 65000, 1));
    assert_eq!(jpeg.pixels(), 4_225_000_000);
}

#[test]
fn hostile_files_sniff_and_probe_as_what_they_are() {
    let text = testdata("hostile/text_named.jpg");
    assert_eq!(sniff(&text), None);
    assert_eq!(probe(&text), Err(ProbeError::Unsupported(None)));

    let empty = testdata("hostile/empty.jpg");
    assert_eq!(sniff(&empty), None);
    assert!(matches!(
        probe(&empty),
        Err(ProbeError::NeedMoreData { .. })
    ));

    let png = testdata("hostile/png_named.jpg");
    assert_eq!(sniff(&png), Some(IMAGE_PNG));
    assert_eq!(probe(prefix(&png)), Ok(info(IMAGE_PNG, 1200, 750, 1)));

    let svg = testdata("hostile/script.svg");
    assert_eq!(sniff(&svg), None);
    assert_eq!(probe(&svg), Err(ProbeError::Unsupported(None)));

    // "GIF89a<html><script>…": the magic matches, the structure does not.
    let polyglot = testdata("hostile/polyglot_gif_html.gif");
    assert_eq!(sniff(&polyglot), Some(IMAGE_GIF));
    assert!(matches!(probe(&polyglot), Err(ProbeError::Corrupt(_))));

    let animated = testdata("hostile/animated.gif");
    assert_eq!(probe(&animated), Ok(info(IMAGE_GIF, 64, 64, 1)));

    // Damage past the header is for the decoder to find.
    let truncated = testdata("hostile/truncated.jpg");
    assert_eq!(probe(&truncated), Ok(info(IMAGE_JPEG, 2560, 1600, 1)));
    let bad_crc = testdata("hostile/bad_crc.png");
    assert_eq!(probe(prefix(&bad_crc)), Ok(info(IMAGE_PNG, 1200, 750, 1)));
}

#[test]
fn need_more_data_says_how_much_and_the_hint_leads_to_the_answer() {
    for &(name, ..) in PHOTOS {
        let bytes = testdata(&format!("photos/{name}"));
        let full = probe(prefix(&bytes));
        let mut len = 0;
        let mut steps = 0;
        let found = loop {
            match probe(&bytes[..len]) {
                Err(ProbeError::NeedMoreData { needed }) => {
                    assert!(needed > len, "{name}: no progress at {len}");
                    assert!(needed <= bytes.len(), "{name}: asks past the end");
                    len = needed;
                    steps += 1;
                    assert!(steps < 1000, "{name}: too many steps");
                }
                other => break other,
            }
        };
        assert_eq!(found, full, "{name}");
    }
}

#[test]
fn other_known_types_are_unsupported_by_name() {
    assert_eq!(
        probe(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"),
        Err(ProbeError::Unsupported(Some(crate::APPLICATION_PDF)))
    );
    assert_eq!(
        probe(b"II*\0\x08\0\0\0"),
        Err(ProbeError::Unsupported(Some(crate::IMAGE_TIFF)))
    );
}

#[test]
fn prefixes_of_a_signature_need_more_data() {
    for short in [
        &b""[..],
        b"\xFF",
        b"\xFF\xD8",
        b"\x89PNG",
        b"GIF8",
        b"RIFF",
        b"RIFF\0\0\0\0WE",
    ] {
        assert_eq!(
            probe(short),
            Err(ProbeError::NeedMoreData {
                needed: short.len() + 1
            }),
            "{short:?}"
        );
    }
    assert_eq!(
        probe(b"RIFF\0\0\0\0WAVE"),
        Err(ProbeError::Unsupported(None))
    );
    assert_eq!(probe(b"\xFF\x00"), Err(ProbeError::Unsupported(None)));
}

/// A minimal JPEG header: SOI, the given segments, and a SOF of `marker`.
fn jpeg_with(segments: &[(u8, Vec<u8>)], sof: u8, width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    for (marker, body) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&[0xFF, sof, 0, 11, 8]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[1, 1, 0x11, 0]);
    out.extend_from_slice(&[0xFF, 0xDA]);
    out
}

fn exif_app1(orientation: u16) -> (u8, Vec<u8>) {
    let mut body = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
    body.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
    body.extend_from_slice(&orientation.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    (0xE1, body)
}

#[test]
fn jpeg_frames_of_every_kind_give_their_size() {
    for sof in [
        0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF,
    ] {
        let jpeg = jpeg_with(&[(0xE0, b"JFIF\0\x01\x01".to_vec())], sof, 640, 480);
        assert_eq!(probe(&jpeg), Ok(info(IMAGE_JPEG, 640, 480, 1)), "{sof:#x}");
    }
    // DHT before the frame is skipped, not mistaken for one.
    let jpeg = jpeg_with(&[(0xC4, vec![0; 20])], 0xC0, 640, 480);
    assert_eq!(probe(&jpeg), Ok(info(IMAGE_JPEG, 640, 480, 1)));
    // Fill bytes before a marker.
    let mut filled = jpeg_with(&[], 0xC0, 64, 48);
    filled.splice(2..2, [0xFF, 0xFF]);
    assert_eq!(probe(&filled), Ok(info(IMAGE_JPEG, 64, 48, 1)));
}

#[test]
fn jpeg_orientation_comes_from_the_first_exif_block() {
    let jpeg = jpeg_with(&[exif_app1(8), exif_app1(3)], 0xC2, 300, 200);
    let found = probe(&jpeg).unwrap();
    assert_eq!(found, info(IMAGE_JPEG, 300, 200, 8));
    assert_eq!((found.display_width(), found.display_height()), (200, 300));

    // An XMP APP1 first does not hide the EXIF one; a nonsense value means upright.
    let xmp = (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>".to_vec());
    let jpeg = jpeg_with(&[xmp, exif_app1(3)], 0xC0, 300, 200);
    assert_eq!(probe(&jpeg), Ok(info(IMAGE_JPEG, 300, 200, 3)));
    let jpeg = jpeg_with(&[exif_app1(42)], 0xC0, 300, 200);
    assert_eq!(probe(&jpeg), Ok(info(IMAGE_JPEG, 300, 200, 1)));
}

#[test]
fn broken_jpeg_headers_are_corrupt() {
    let mut bad_length = jpeg_with(&[(0xE0, vec![0; 4])], 0xC0, 64, 48);
    bad_length[4..6].copy_from_slice(&[0, 1]);
    assert!(matches!(probe(&bad_length), Err(ProbeError::Corrupt(_))));

    let scan_first = [0xFF, 0xD8, 0xFF, 0xDA, 0, 2];
    assert!(matches!(probe(&scan_first), Err(ProbeError::Corrupt(_))));
    let eoi_first = [0xFF, 0xD8, 0xFF, 0xD9];
    assert!(matches!(probe(&eoi_first), Err(ProbeError::Corrupt(_))));
    let garbage = [0xFF, 0xD8, 0xFF, 0xE0, 0, 2, b'x'];
    assert!(matches!(probe(&garbage), Err(ProbeError::Corrupt(_))));
    let zero_width = jpeg_with(&[], 0xC0, 0, 48);
    assert!(matches!(probe(&zero_width), Err(ProbeError::Corrupt(_))));
    // A height left to a DNL marker is valid JPEG that a header probe cannot size.
    let dnl = jpeg_with(&[], 0xC0, 64, 0);
    assert_eq!(probe(&dnl), Err(ProbeError::Unsupported(Some(IMAGE_JPEG))));
}

#[test]
fn a_long_metadata_segment_needs_the_bytes_after_it() {
    let jpeg = jpeg_with(&[(0xE2, vec![0; 60_000])], 0xC0, 64, 48);
    // SOI, the APP2 marker and length, its body, then the first byte of the next marker.
    assert_eq!(
        probe(&jpeg[..1000]),
        Err(ProbeError::NeedMoreData {
            needed: 2 + 4 + 60_000 + 1
        })
    );
    assert_eq!(probe(&jpeg), Ok(info(IMAGE_JPEG, 64, 48, 1)));
}

fn png_with_ihdr(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[depth, color, 0, 0, 0]);
    let crc = png_crc(&out[12..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn png_crc(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn png_headers_are_checked() {
    assert_eq!(
        probe(&png_with_ihdr(1, 1, 1, 0)),
        Ok(info(IMAGE_PNG, 1, 1, 1))
    );
    assert_eq!(
        probe(&png_with_ihdr(i32::MAX as u32, 7, 16, 6)),
        Ok(info(IMAGE_PNG, i32::MAX as u32, 7, 1))
    );
    for (width, height, depth, color) in [
        (0, 10, 8, 2),
        (10, 0, 8, 2),
        (1 << 31, 10, 8, 2),
        (10, 10, 4, 2),
        (10, 10, 16, 3),
        (10, 10, 8, 5),
    ] {
        assert!(
            matches!(
                probe(&png_with_ihdr(width, height, depth, color)),
                Err(ProbeError::Corrupt(_))
            ),
            "{width}x{height} depth {depth} color {color}"
        );
    }
    let mut bad_crc = png_with_ihdr(10, 10, 8, 2);
    bad_crc[30] ^= 1;
    assert!(matches!(probe(&bad_crc), Err(ProbeError::Corrupt(_))));
    let mut not_ihdr = png_with_ihdr(10, 10, 8, 2);
    not_ihdr[12..16].copy_from_slice(b"IDAT");
    assert!(matches!(probe(&not_ihdr), Err(ProbeError::Corrupt(_))));
    assert_eq!(
        probe(&png_with_ihdr(10, 10, 8, 2)[..20]),
        Err(ProbeError::NeedMoreData { needed: 24 })
    );
}

fn riff_webp(chunk: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(payload.len() as u32 + 12).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(chunk);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn webp_lossy_lossless_and_extended_headers_give_their_size() {
    let mut vp8 = vec![0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A];
    vp8.extend_from_slice(&(400u16 | 0x4000).to_le_bytes()); // with an upscaling hint
    vp8.extend_from_slice(&300u16.to_le_bytes());
    vp8.extend_from_slice(&[0; 8]);
    assert_eq!(
        probe(&riff_webp(b"VP8 ", &vp8)),
        Ok(info(IMAGE_WEBP, 400, 300, 1))
    );

    let bits: u32 = 399 | (299 << 14) | (1 << 28);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    assert_eq!(
        probe(&riff_webp(b"VP8L", &vp8l)),
        Ok(info(IMAGE_WEBP, 400, 300, 1))
    );

    let max = riff_webp(
        b"VP8X",
        &[0x10, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    assert_eq!(probe(&max), Ok(info(IMAGE_WEBP, 1 << 24, 1 << 24, 1)));

    let mut inter_frame = vp8.clone();
    inter_frame[0] |= 1;
    assert!(matches!(
        probe(&riff_webp(b"VP8 ", &inter_frame)),
        Err(ProbeError::Corrupt(_))
    ));
    let mut bad_start = vp8.clone();
    bad_start[3] = 0;
    assert!(matches!(
        probe(&riff_webp(b"VP8 ", &bad_start)),
        Err(ProbeError::Corrupt(_))
    ));
    let mut zero = vp8;
    zero[6..8].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        probe(&riff_webp(b"VP8 ", &zero)),
        Err(ProbeError::Corrupt(_))
    ));
    assert!(matches!(
        probe(&riff_webp(b"ALPH", &[0; 10])),
        Err(ProbeError::Corrupt(_))
    ));
}

#[test]
fn gif_headers_skip_the_palette_to_the_first_block() {
    let mut gif = b"GIF87a\x0a\x00\x05\x00\x81\x00\x00".to_vec();
    gif.extend_from_slice(&[0; 12]); // 4-colour palette
    gif.push(0x2C);
    assert_eq!(probe(&gif), Ok(info(IMAGE_GIF, 10, 5, 1)));
    assert_eq!(
        probe(&gif[..20]),
        Err(ProbeError::NeedMoreData { needed: 26 })
    );
    let trailer_only = b"GIF89a\x0a\x00\x05\x00\x00\x00\x00\x3b";
    assert!(matches!(probe(trailer_only), Err(ProbeError::Corrupt(_))));
    let zero = b"GIF89a\x00\x00\x05\x00\x00\x00\x00\x2c";
    assert!(matches!(probe(zero), Err(ProbeError::Corrupt(_))));
}

/// SplitMix64: a deterministic PRNG, so a failing mutation is reproducible from its seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut SplitMix, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
            1 if at < bytes.len() => bytes[at] = rng.next() as u8,
            2 => bytes.truncate(at),
            3 => {
                let insert: Vec<u8> = (0..=rng.below(8)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, insert);
            }
            4 => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ if at + 2 <= bytes.len() => {
                let extreme = [0x0000u16, 0x0001, 0x0002, 0x7FFF, 0xFFFE, 0xFFFF];
                let value = extreme[rng.below(extreme.len())];
                bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
            }
            _ => {}
        }
    }
}

#[test]
fn thousands_of_mutated_headers_never_panic_and_answer_consistently() {
    let seeds = [
        "photos/path_exif_orientation6_gps.jpg",
        "photos/kleiber_6028x3391.jpg",
        "photos/path_progressive_1600x1000.jpg",
        "photos/path_gray_1200x750.png",
        "photos/kleiber_12mp_4000x3000.webp",
        "hostile/animated.gif",
    ];
    let mut rng = SplitMix(0x5EED_CAFE);
    let mut outcomes = [0usize; 4];
    for name in seeds {
        let bytes = testdata(name);
        // Mutate what the probe reads (the header up to the frame), plus a little.
        let header_len = bytes.len().min(header_end(&bytes) + 64);
        let header = &bytes[..header_len];
        for _ in 0..5_000 {
            let mut mutated = header.to_vec();
            mutate(&mut rng, &mut mutated);
            let sniffed = sniff(&mutated);
            match probe(&mutated) {
                Ok(found) => {
                    outcomes[0] += 1;
                    assert_eq!(Some(found.content_type), sniffed, "{name}");
                    assert!(found.width > 0 && found.height > 0, "{name}: {found:?}");
                    assert!((1..=8).contains(&found.orientation), "{name}: {found:?}");
                }
                Err(ProbeError::NeedMoreData { needed }) => {
                    outcomes[1] += 1;
                    assert!(needed > mutated.len(), "{name}: {needed}");
                }
                Err(ProbeError::Corrupt(_)) => outcomes[2] += 1,
                Err(ProbeError::Unsupported(_)) => outcomes[3] += 1,
            }
        }
    }
    // The mutations really reach every outcome, not only the trivially rejected ones.
    assert!(outcomes.iter().all(|&n| n > 100), "{outcomes:?}");
}

/// How many bytes `probe` needs for a valid file.
fn header_end(bytes: &[u8]) -> usize {
    let mut len = 0;
    while let Err(ProbeError::NeedMoreData { needed }) = probe(&bytes[..len]) {
        len = needed;
    }
    len
}
