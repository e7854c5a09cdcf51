//! Decoding JPEG, PNG and WebP into 8-bit RGB in stored orientation.
//!
//! Every decoder is held to the probed header: it must find the same dimensions, and the
//! buffers handed to it are sized from those (already checked against the pixel limit), so
//! a header that lies to the probe, or a decoder that reads another header, fails the image
//! instead of allocating for it.

use std::io::Cursor;

use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::{color, MediaError};
use crate::probe::ImageInfo;

/// Progressive scans allowed in one JPEG: real encoders use about 10; thousands of tiny
/// scans are a known way to make a small file cost minutes of CPU.
const MAX_JPEG_SCANS: u32 = 500;

/// Bytes the PNG decoder may allocate beyond the image buffer we hand it (row buffers,
/// zlib state, metadata chunks); its default, made explicit.
const PNG_DECODER_BYTES: usize = 64 * 1024 * 1024;

/// Largest ICCP chunk (ICC profile) read from a WebP; a larger one is ignored.
const WEBP_METADATA_BYTES: u32 = 16 * 1024 * 1024;

/// Packed 8-bit RGB pixels, rows top to bottom without padding.
#[derive(Clone, Debug)]
pub(crate) struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes `bytes` (whose header `info` describes and whose pixel count is within limits)
/// to RGB, at full size or — for JPEG — at the smallest DCT scale at least `needed`
/// (stored-orientation width and height).
pub(super) fn decode(
    bytes: &[u8],
    info: &ImageInfo,
    needed: (u32, u32),
) -> Result<Rgb, MediaError> {
    #[cfg(test)]
    super::DECODES.with(|n| n.set(n.get() + 1));
    match info.content_type {
        crate::IMAGE_JPEG => jpeg(bytes, info, needed),
        crate::IMAGE_PNG => png(bytes, info),
        crate::IMAGE_WEBP => webp(bytes, info),
        other => Err(MediaError::Unsupported(other.to_owned())),
    }
}

fn corrupt(format: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::ContentMismatch(format!("{format}: {e}"))
}

/// `width × height × channels` bytes, refusing what does not fit in memory's address space.
fn buffer_len(width: u32, height: u32, channels: usize) -> Result<usize, MediaError> {
    usize::try_from(width)
        .ok()
        .and_then(|w| w.checked_mul(usize::try_from(height).ok()?))
        .and_then(|n| n.checked_mul(channels))
        .ok_or_else(|| MediaError::ContentMismatch("image dimensions overflow".to_owned()))
}

fn same_size(format: &str, found: (u32, u32), info: &ImageInfo) -> Result<(), MediaError> {
    if found != (info.width, info.height) {
        return Err(MediaError::ContentMismatch(format!(
            "{format}: decoder found {}x{}, header said {}x{}",
            found.0, found.1, info.width, info.height
        )));
    }
    Ok(())
}

fn jpeg(bytes: &[u8], info: &ImageInfo, needed: (u32, u32)) -> Result<Rgb, MediaError> {
    let err = |e: turbojpeg::Error| corrupt("JPEG", e);
    let mut decompressor = Decompressor::new().map_err(err)?;
    decompressor.set_scan_limit(MAX_JPEG_SCANS).map_err(err)?;
    let header = decompressor.read_header(bytes).map_err(err)?;
    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    same_size("JPEG", (size(header.width), size(header.height)), info)?;

    // The smallest n/8 whose output still covers what the variants need. Lossless JPEG
    // does not scale.
    let scale = if header.is_lossless {
        ScalingFactor::ONE
    } else {
        (1..=8)
            .map(|n| ScalingFactor::new(n, 8))
            .find(|f| {
                f.scale(header.width) >= needed.0 as usize
                    && f.scale(header.height) >= needed.1 as usize
            })
            .unwrap_or(ScalingFactor::ONE)
    };
    decompressor.set_scaling_factor(scale).map_err(err)?;
    let scaled = header.scaled(scale);
    let (width, height) = (size(scaled.width), size(scaled.height));

    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, channels) = if cmyk {
        (PixelFormat::CMYK, 4)
    } else {
        (PixelFormat::RGB, 3)
    };
    let mut pixels = vec![0u8; buffer_len(width, height, channels)?];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch: scaled.width * channels,
        height: scaled.height,
        format,
    };
    // Warnings (premature end of data, corrupt entropy data) fail the decode too: a
    // truncated upload is refused, not published half grey.
    decompressor.decompress(bytes, image).map_err(err)?;
    if cmyk {
        pixels = cmyk_to_rgb(&pixels, has_adobe_marker(bytes));
    } else if header.colorspace != Colorspace::Gray {
        if let Some(icc) = color::jpeg_icc(bytes) {
            color::to_srgb(&mut pixels, &icc);
        }
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

/// Naive CMYK → RGB (no colour management): `R = (1 − C)(1 − K)` and so on. Adobe
/// applications, which write nearly all CMYK JPEGs and mark them with an APP14 `Adobe`
/// segment, store the channels inverted.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = [px[0], px[1], px[2], px[3]].map(|v| {
            let v = u32::from(v);
            if inverted {
                v
            } else {
                255 - v
            }
        });
        // Each value is now the amount of light let through, 0..=255.
        for v in [c, m, y] {
            rgb.push(((v * k + 127) / 255) as u8);
        }
    }
    rgb
}

/// Whether an APP14 `Adobe` segment comes before the first scan.
fn has_adobe_marker(b: &[u8]) -> bool {
    header_segments(b).any(|(marker, body)| marker == 0xEE && body.starts_with(b"Adobe"))
}

/// The marker segments of a JPEG's header, `(marker, body)`, from SOI up to the first scan;
/// the walk ends quietly at anything malformed (judging the file is the decoder's job).
pub(super) fn header_segments(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = 2;
    std::iter::from_fn(move || loop {
        let (Some(&0xFF), Some(&marker)) = (b.get(pos), b.get(pos + 1)) else {
            return None;
        };
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            pos += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = b.get(pos + 2..pos + 4)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return None;
        }
        let body = b.get(pos + 4..pos + 2 + len)?;
        pos += 2 + len;
        return Some((marker, body));
    })
}

fn png(bytes: &[u8], info: &ImageInfo) -> Result<Rgb, MediaError> {
    let err = |e: png::DecodingError| corrupt("PNG", e);
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: PNG_DECODER_BYTES,
        },
    );
    // 8 bits per sample, palettes and low bit depths expanded (to gray, gray+alpha, RGB or
    // RGBA).
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(err)?;
    same_size("PNG", reader.info().size(), info)?;
    let (color, depth) = reader.output_color_type();
    let channels = match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => 2,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        other => {
            return Err(MediaError::Unsupported(format!(
                "PNG output {other:?} after normalisation"
            )))
        }
    };
    let len = buffer_len(info.width, info.height, channels)?;
    if reader.output_buffer_size() != Some(len) {
        return Err(MediaError::ContentMismatch(
            "PNG: unexpected output size".to_owned(),
        ));
    }
    // An iCCP profile applies to colour images only (a gray one is neutral either way).
    let icc = match channels {
        3 | 4 => reader.info().icc_profile.as_deref().map(<[u8]>::to_vec),
        _ => None,
    };
    let mut pixels = vec![0u8; len];
    // The first frame: the default image (an APNG's animation is not played).
    reader.next_frame(&mut pixels).map_err(err)?;
    let mut pixels = to_rgb(pixels, channels);
    if let Some(icc) = icc {
        color::to_srgb(&mut pixels, &icc);
    }
    Ok(Rgb {
        width: info.width,
        height: info.height,
        pixels,
    })
}

fn webp(bytes: &[u8], info: &ImageInfo) -> Result<Rgb, MediaError> {
    let err = |e: webpx::At<webpx::Error>| corrupt("WebP", e.error());
    // libwebp (through `webpx`). The header read here allocates nothing; our own pixel
    // limit was enforced on the probe, so webpx's default caps (64 MP, 64 MiB of input) are
    // lifted rather than left to refuse images the caller allows.
    let decoder = webpx::Decoder::new(bytes)
        .map_err(err)?
        .config(webpx::DecoderConfig::new().limits(webpx::Limits::none()));
    let features = decoder.info();
    same_size("WebP", (features.width, features.height), info)?;
    if features.has_animation {
        return Err(MediaError::Unsupported(
            "animated WebP is not allowed as post media".to_owned(),
        ));
    }
    let channels = if features.has_alpha { 4 } else { 3 };
    let len = buffer_len(info.width, info.height, channels)?;
    let stride = info
        .width
        .checked_mul(channels as u32)
        .ok_or_else(|| MediaError::ContentMismatch("image dimensions overflow".to_owned()))?;
    // An unreadable or oversized ICCP chunk leaves the pixels taken as sRGB, as no chunk
    // would.
    let icc = webpx::get_icc_profile_with_limits(
        bytes,
        &webpx::Limits::none().with_max_metadata_bytes(WEBP_METADATA_BYTES),
    )
    .ok()
    .flatten();
    let mut pixels = vec![0u8; len];
    // libwebp's simple API: one thread, straight into our buffer, which it checks against
    // the stride × height it needs.
    let found = if channels == 4 {
        decoder.decode_rgba_into(&mut pixels, stride)
    } else {
        decoder.decode_rgb_into(&mut pixels, stride)
    }
    .map_err(err)?;
    same_size("WebP", found, info)?;
    let mut pixels = to_rgb(pixels, channels);
    if let Some(icc) = icc {
        color::to_srgb(&mut pixels, &icc);
    }
    Ok(Rgb {
        width: info.width,
        height: info.height,
        pixels,
    })
}

/// Gray, gray+alpha, RGB or RGBA (8-bit) to RGB, alpha composited onto white.
fn to_rgb(pixels: Vec<u8>, channels: usize) -> Vec<u8> {
    // c·a + 255·(255 − a), divided by 255 and rounded.
    let over_white = |c: u8, a: u8| {
        let (c, a) = (u32::from(c), u32::from(a));
        ((c * a + 255 * (255 - a) + 127) / 255) as u8
    };
    match channels {
        3 => pixels,
        1 => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        2 => pixels
            .chunks_exact(2)
            .flat_map(|p| {
                let g = over_white(p[0], p[1]);
                [g, g, g]
            })
            .collect(),
        _ => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                [
                    over_white(p[0], p[3]),
                    over_white(p[1], p[3]),
                    over_white(p[2], p[3]),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_goes_onto_white_and_gray_becomes_rgb() {
        assert_eq!(to_rgb(vec![10, 20, 30, 255], 4), vec![10, 20, 30]);
        assert_eq!(to_rgb(vec![10, 20, 30, 0], 4), vec![255, 255, 255]);
        assert_eq!(to_rgb(vec![0, 0, 0, 128], 4), vec![127, 127, 127]);
        assert_eq!(to_rgb(vec![7], 1), vec![7, 7, 7]);
        assert_eq!(to_rgb(vec![0, 0], 2), vec![255, 255, 255]);
    }

    #[test]
    fn cmyk_inversion_follows_the_adobe_marker() {
        // No ink at all is white either way once the convention is known.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        // Full black ink.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0], true), vec![0, 0, 0]);
        // Cyan ink only: no red.
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 0], false), vec![0, 255, 255]);
    }

    #[test]
    fn the_adobe_marker_is_found_only_before_the_scan() {
        let mut jpeg = b"\xFF\xD8\xFF\xE0\0\x04ab".to_vec();
        assert!(!has_adobe_marker(&jpeg));
        jpeg.extend_from_slice(b"\xFF\xEE\0\x0eAdobe\0d\0\0\0\0\x01");
        assert!(has_adobe_marker(&jpeg));
        let mut late = b"\xFF\xD8\xFF\xDA\0\x02".to_vec();
        late.extend_from_slice(b"\xFF\xEE\0\x0eAdobe\0d\0\0\0\0\x01");
        assert!(!has_adobe_marker(&late));
        assert!(!has_adobe_marker(b"\xFF\xD8\xFF"));
        assert!(!has_adobe_marker(b"\xFF\xD8\xFF\xE0\0\x00"));
    }
}
