//! Colour management: pixels tagged with an embedded RGB ICC profile (Display P3 from
//! phones, Adobe RGB from cameras, ProPhoto from raw converters) are converted to sRGB before
//! the variants are made, which carry no profile and are therefore read as sRGB.
//!
//! Conversion is `qcms` (Firefox's colour management), relative colorimetric through the
//! profile's matrix and curves, or its A2B0 table where it has one. What is not converted,
//! and taken as sRGB as before: images without a profile, profiles that name themselves
//! sRGB (the common phone case: converting would cost time and change nothing), gray and
//! CMYK profiles (gray images are neutral whatever the profile; CMYK keeps the plain formula,
//! see `decode`), profiles larger than [`MAX_ICC_BYTES`] and profiles `qcms` cannot read.

use std::sync::OnceLock;

/// Largest embedded profile looked at. Matrix profiles are under 4 KiB, table-based ones
/// from printers and cameras up to about 1 MiB; a JPEG can split up to 16 MiB over its
/// APP2 segments, which is not worth reading.
pub(crate) const MAX_ICC_BYTES: usize = 4 * 1024 * 1024;

/// The output profile, with its inverse curves precomputed (built once per process).
fn srgb() -> &'static qcms::Profile {
    static SRGB: OnceLock<Box<qcms::Profile>> = OnceLock::new();
    SRGB.get_or_init(|| {
        let mut profile = qcms::Profile::new_sRGB();
        profile.precache_output_transform();
        profile
    })
}

/// Converts packed 8-bit RGB `pixels` from the colour space of `icc` to sRGB, in place.
/// Returns whether anything was converted (`false` for the profiles the module comment
/// lists as taken as sRGB).
pub(crate) fn to_srgb(pixels: &mut [u8], icc: &[u8]) -> bool {
    if icc.len() > MAX_ICC_BYTES || !is_rgb(icc) || names_srgb(icc) || !lut_offsets_inside(icc) {
        return false;
    }
    let Some(profile) = qcms::Profile::new_from_slice(icc, false) else {
        return false;
    };
    let Some(transform) = qcms::Transform::new(
        &profile,
        srgb(),
        qcms::DataType::RGB8,
        qcms::Intent::RelativeColorimetric,
    ) else {
        return false;
    };
    transform.apply(pixels);
    true
}

/// Whether every `lutAToBType` / `lutBToAType` tag (`mAB ` / `mBA `, the A2B0 and B2A0 tables
/// of v4 profiles) points at curves, matrix and grid inside the profile. qcms 0.3 adds these
/// offsets to the tag's as `u32` without checking: one near 4 GiB overflows, which panics in
/// builds with overflow checks (and reads the wrong bytes in others). Such profiles are
/// ignored.
fn lut_offsets_inside(icc: &[u8]) -> bool {
    let Some(count) = be32(icc, 128) else {
        return true;
    };
    (0..count.min(1024)).all(|i| {
        let at = 132 + i * 12;
        let Some(offset) = be32(icc, at + 4) else {
            return true;
        };
        let kind = icc.get(offset..offset.saturating_add(4));
        if kind != Some(b"mAB ".as_slice()) && kind != Some(b"mBA ".as_slice()) {
            return true;
        }
        // B curves, matrix, M curves, CLUT, A curves: 0 when absent.
        (12..32).step_by(4).all(|field| {
            be32(icc, offset + field).is_none_or(|sub| sub == 0 || offset + sub < icc.len())
        })
    })
}

/// Whether the profile header says its data colour space is RGB (`'RGB '` at byte 16).
fn is_rgb(icc: &[u8]) -> bool {
    icc.get(16..20) == Some(b"RGB ".as_slice())
}

/// Whether the profile's description (`desc` tag, ICC v2 `desc` or v4 `mluc` text) starts
/// with "sRGB", as "sRGB IEC61966-2.1" and "sRGB built-in" do.
fn names_srgb(icc: &[u8]) -> bool {
    description(icc).is_some_and(|d| d.trim_start().starts_with("sRGB"))
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let v = b.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_be_bytes([v[0], v[1], v[2], v[3]])).ok()
}

/// The profile's description text, when its `desc` tag can be read.
fn description(icc: &[u8]) -> Option<String> {
    let count = be32(icc, 128)?;
    // Tag table entries are 12 bytes: signature, offset, size.
    let (offset, size) = (0..count.min(1024)).find_map(|i| {
        let at = 132 + i * 12;
        (icc.get(at..at + 4)? == b"desc").then(|| Some((be32(icc, at + 4)?, be32(icc, at + 8)?)))?
    })?;
    let tag = icc.get(offset..offset.checked_add(size)?)?;
    match tag.get(0..4)? {
        // v2 textDescriptionType: ASCII count (with its NUL) at 8, text at 12.
        b"desc" => {
            let len = be32(tag, 8)?;
            let text = tag.get(12..12usize.checked_add(len)?)?;
            Some(
                String::from_utf8_lossy(text)
                    .trim_end_matches('\0')
                    .to_owned(),
            )
        }
        // v4 multiLocalizedUnicodeType: the first record's UTF-16BE text.
        b"mluc" => {
            let (len, at) = (be32(tag, 20)?, be32(tag, 24)?);
            let text = tag.get(at..at.checked_add(len)?)?;
            let units: Vec<u16> = text
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// The ICC profile a JPEG carries in its `APP2 "ICC_PROFILE\0"` segments (before the first
/// scan), its chunks put back in sequence order; `None` when there is none, a chunk is
/// missing or repeated, or the whole is over [`MAX_ICC_BYTES`].
pub(crate) fn jpeg_icc(b: &[u8]) -> Option<Vec<u8>> {
    const TAG: &[u8] = b"ICC_PROFILE\0";
    let mut chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut declared = 0u8;
    let mut total = 0usize;
    for (marker, body) in super::decode::header_segments(b) {
        let Some(rest) = body.strip_prefix(TAG).filter(|_| marker == 0xE2) else {
            continue;
        };
        let [seq, count, data @ ..] = rest else {
            return None;
        };
        total += data.len();
        if total > MAX_ICC_BYTES || *count == 0 || (declared != 0 && *count != declared) {
            return None;
        }
        declared = *count;
        chunks.push((*seq, data));
    }
    if chunks.is_empty() || chunks.len() != usize::from(declared) {
        return None;
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    if chunks
        .iter()
        .zip(1u8..)
        .any(|((seq, _), want)| *seq != want)
    {
        return None;
    }
    Some(
        chunks
            .iter()
            .flat_map(|(_, data)| data.iter().copied())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::icc::{embed_in_jpeg, matrix_profile, DISPLAY_P3, SRGB};
    use crate::pipeline::{process, Limits, Processed};

    /// sRGB with its red and green colorants exchanged: what it calls red is sRGB green.
    fn swapped() -> Vec<u8> {
        matrix_profile("Swapped RG", [SRGB[1], SRGB[0], SRGB[2]])
    }

    const COLOUR: [u8; 3] = [200, 60, 30];
    const W: u32 = 64;
    const H: u32 = 48;

    fn solid() -> Vec<u8> {
        COLOUR.repeat((W * H) as usize)
    }

    /// A JPEG of [`COLOUR`] carrying `icc` in APP2 chunks of at most `chunk` bytes.
    fn jpeg_with(icc: &[u8], chunk: usize) -> Vec<u8> {
        let pixels = solid();
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: W as usize,
            pitch: W as usize * 3,
            height: H as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        let jpeg = turbojpeg::compress(image, 95, turbojpeg::Subsamp::None).unwrap();
        embed_in_jpeg(&jpeg, icc, chunk)
    }

    fn png_with(icc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut info = png::Info::with_size(W, H);
        info.color_type = png::ColorType::Rgb;
        info.bit_depth = png::BitDepth::Eight;
        info.icc_profile = Some(icc.to_vec().into());
        let mut writer = png::Encoder::with_info(&mut out, info)
            .unwrap()
            .write_header()
            .unwrap();
        writer.write_image_data(&solid()).unwrap();
        writer.finish().unwrap();
        out
    }

    fn webp_with(icc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = image_webp::WebPEncoder::new(&mut out);
        encoder.set_icc_profile(icc.to_vec());
        encoder
            .encode(&solid(), W, H, image_webp::ColorType::Rgb8)
            .unwrap();
        out
    }

    /// The mean colour of the `w640` variant (the image is one colour).
    fn variant_colour(processed: &Processed) -> [u8; 3] {
        let jpeg = &processed.variants[1].jpeg;
        let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).unwrap();
        let n = image.pixels.len() / 3;
        let mut sum = [0usize; 3];
        for px in image.pixels.chunks_exact(3) {
            for c in 0..3 {
                sum[c] += usize::from(px[c]);
            }
        }
        sum.map(|s| u8::try_from(s / n).unwrap())
    }

    fn close(found: [u8; 3], want: [u8; 3]) -> bool {
        found.iter().zip(want).all(|(&f, w)| f.abs_diff(w) <= 3)
    }

    #[test]
    fn every_format_is_converted_through_its_profile() {
        let icc = swapped();
        // Red and green exchange places in sRGB; blue stays.
        let want = [COLOUR[1], COLOUR[0], COLOUR[2]];
        for (name, bytes, declared) in [
            ("jpeg", jpeg_with(&icc, 100), "image/jpeg"),
            ("png", png_with(&icc), "image/png"),
            ("webp", webp_with(&icc), "image/webp"),
        ] {
            let out = process(&bytes, declared, &Limits::default()).unwrap();
            let found = variant_colour(&out);
            assert!(close(found, want), "{name}: {found:?}, want {want:?}");
        }
    }

    #[test]
    fn display_p3_comes_out_more_saturated_in_srgb() {
        let icc = matrix_profile("Display P3", DISPLAY_P3);
        let out = process(&jpeg_with(&icc, 60_000), "image/jpeg", &Limits::default()).unwrap();
        let [r, g, b] = variant_colour(&out);
        // P3's red is beyond sRGB's: the same numbers mean a redder colour, which sRGB
        // writes with more red and less green and blue.
        assert!(
            r > COLOUR[0] + 10 && g + 10 < COLOUR[1] && b < COLOUR[2],
            "{r} {g} {b}"
        );
    }

    #[test]
    fn srgb_gray_broken_and_oversized_profiles_leave_the_pixels_alone() {
        let srgb = matrix_profile("sRGB IEC61966-2.1", [SRGB[1], SRGB[0], SRGB[2]]);
        let mut gray = swapped();
        gray[16..20].copy_from_slice(b"GRAY");
        let mut broken = swapped();
        broken.truncate(200);
        for (name, icc) in [("srgb", srgb), ("gray", gray), ("broken", broken)] {
            let mut pixels = solid();
            assert!(!to_srgb(&mut pixels, &icc), "{name}");
            assert_eq!(pixels, solid(), "{name}");
            let out = process(&jpeg_with(&icc, 1000), "image/jpeg", &Limits::default()).unwrap();
            assert!(close(variant_colour(&out), COLOUR), "{name}");
        }
        // More than the cap, split over many APP2 segments: not read at all.
        let mut big = swapped();
        big.resize(MAX_ICC_BYTES + 1, 0);
        assert_eq!(jpeg_icc(&jpeg_with(&big, 65_000)), None);
    }

    #[test]
    fn jpeg_profile_chunks_must_be_complete() {
        let icc = swapped();
        assert_eq!(jpeg_icc(&jpeg_with(&icc, 100)), Some(icc.clone()));
        // A chunk missing: no profile.
        let jpeg = jpeg_with(&icc, 100);
        let second = jpeg
            .windows(14)
            .position(|w| w.starts_with(b"ICC_PROFILE\0"))
            .unwrap();
        let mut cut = jpeg[..second - 4].to_vec();
        let len = usize::from(u16::from_be_bytes([jpeg[second - 2], jpeg[second - 1]]));
        cut.extend(&jpeg[second - 2 + len..]);
        assert_eq!(jpeg_icc(&cut), None);
        assert_eq!(jpeg_icc(b"\xFF\xD8"), None);
    }

    /// `icc` with its `bTRC` tag (the last) replaced by `body`, under the signature `A2B0`.
    fn with_a2b0(mut icc: Vec<u8>, body: &[u8]) -> Vec<u8> {
        let entry = 132 + 7 * 12;
        assert_eq!(&icc[entry..entry + 4], b"bTRC");
        let offset = be32(&icc, entry + 4).unwrap();
        icc.truncate(offset);
        icc.extend(body);
        icc[entry..entry + 4].copy_from_slice(b"A2B0");
        let size = u32::try_from(body.len()).unwrap().to_be_bytes();
        icc[entry + 8..entry + 12].copy_from_slice(&size);
        let total = u32::try_from(icc.len()).unwrap().to_be_bytes();
        icc[0..4].copy_from_slice(&total);
        icc
    }

    #[test]
    fn lut_tags_pointing_past_the_profile_are_ignored() {
        // Found by the icc_profile fuzz target: an A2B0 lutAToBType whose B-curve offset is
        // 0xFFFFFFFF made qcms add it to the tag offset as u32 and panic on the overflow.
        let mut mab = b"mAB \0\0\0\0\x03\x03\0\0".to_vec();
        mab.extend(u32::MAX.to_be_bytes());
        mab.extend([0; 16]);
        let icc = with_a2b0(swapped(), &mab);
        assert!(!lut_offsets_inside(&icc));
        let mut pixels = solid();
        assert!(!to_srgb(&mut pixels, &icc));
        assert_eq!(pixels, solid());
        let out = process(&jpeg_with(&icc, 100), "image/jpeg", &Limits::default()).unwrap();
        assert!(close(variant_colour(&out), COLOUR));

        // The same tag with its B curves (three identity `curv`s) right after it: read.
        let mut mab = b"mAB \0\0\0\0\x03\x03\0\0".to_vec();
        mab.extend(32u32.to_be_bytes());
        mab.extend([0; 16]);
        for _ in 0..3 {
            mab.extend(b"curv\0\0\0\0\0\0\0\0");
        }
        assert!(lut_offsets_inside(&with_a2b0(swapped(), &mab)));
        assert!(lut_offsets_inside(&swapped()));
    }

    #[test]
    fn descriptions_are_read_from_v2_and_v4_tags() {
        assert_eq!(
            description(&matrix_profile("Display P3", DISPLAY_P3)).as_deref(),
            Some("Display P3")
        );
        // v4: mluc with one record (en-US) whose UTF-16BE text follows the record table.
        let mut icc = matrix_profile("x", DISPLAY_P3);
        let text: Vec<u8> = "sRGB v4"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let mut mluc = b"mluc\0\0\0\0\0\0\0\x01\0\0\0\x0cenUS".to_vec();
        mluc.extend(u32::try_from(text.len()).unwrap().to_be_bytes());
        mluc.extend(28u32.to_be_bytes());
        mluc.extend(&text);
        let offset = be32(&icc, 132 + 4).unwrap();
        icc.truncate(offset);
        icc.extend(&mluc);
        let size = u32::try_from(mluc.len()).unwrap().to_be_bytes();
        icc[132 + 8..132 + 12].copy_from_slice(&size);
        assert_eq!(description(&icc).as_deref(), Some("sRGB v4"));
        assert!(names_srgb(&icc));
    }
}
