//! From decoded pixels to the variants: resize (in stored orientation, where it is cheapest),
//! turn upright, encode; and the blurhash.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use super::{MediaError, Processed, Rgb, Variant, JPEG_QUALITY, THUMB_SIZE};
use crate::probe::ImageInfo;

/// The blurhash is computed on the image shrunk to fit this square: its few components
/// need no more, and the encoder's cost grows with the pixel count.
const BLURHASH_SIZE: u32 = 32;

fn internal(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::ContentMismatch(format!("{what}: {e}"))
}

/// Makes `thumb`, `w640` and `w1080` (in that order) and the blurhash from `decoded`, the
/// image in stored orientation, possibly at a reduced scale.
pub(super) fn make_variants(decoded: Rgb, info: &ImageInfo) -> Result<Processed, MediaError> {
    let (display_w, display_h) = (info.display_width(), info.display_height());
    let transposed = info.is_transposed();
    // Display size to stored size.
    let stored = |(w, h): (u32, u32)| if transposed { (h, w) } else { (w, h) };
    let mut resizer = Resizer::new();

    // Each variant is resized from the smallest buffer already made that covers it:
    // w1080 from the decoded image, w640 from w1080, thumb from w640 when big enough.
    let w1080 = resize(
        &mut resizer,
        &decoded,
        stored(fit_width(display_w, display_h, 1080)),
        false,
    )?;
    let w640 = resize(
        &mut resizer,
        &w1080,
        stored(fit_width(display_w, display_h, 640)),
        false,
    )?;
    let fitted = [("w1080", &w1080), ("w640", &w640)];

    let side = THUMB_SIZE.min(display_w).min(display_h);
    let thumb_source = fitted
        .iter()
        .rev()
        .map(|(_, buffer)| buffer.as_ref())
        .find(|b| b.width.min(b.height) >= side)
        .unwrap_or(&decoded);
    let thumb = resize(&mut resizer, thumb_source, (side, side), true)?;

    let mut compressor = Compressor::new().map_err(|e| internal("JPEG encoder", e))?;
    compressor
        .set_quality(JPEG_QUALITY)
        .map_err(|e| internal("JPEG encoder", e))?;
    compressor
        .set_subsamp(Subsamp::Sub2x2)
        .map_err(|e| internal("JPEG encoder", e))?;

    let mut variants = Vec::with_capacity(3);
    let thumb = orient(&thumb, info.orientation);
    variants.push(encode(&mut compressor, "thumb", &thumb)?);
    let mut blurhash_source = None;
    for (name, buffer) in fitted.iter().rev() {
        let upright = orient(buffer, info.orientation);
        variants.push(encode(&mut compressor, name, &upright)?);
        if blurhash_source.is_none() {
            blurhash_source = Some(upright);
        }
    }
    let blurhash = match blurhash_source {
        Some(source) => blurhash(&mut resizer, &source)?,
        None => return Err(internal("blurhash", "no variant")),
    };
    Ok(Processed {
        width: display_w,
        height: display_h,
        blurhash,
        variants,
    })
}

/// The size that fits `width` keeping the aspect ratio, never larger than the image.
fn fit_width(w: u32, h: u32, width: u32) -> (u32, u32) {
    if w <= width {
        return (w, h);
    }
    let scaled = (u64::from(h) * u64::from(width) + u64::from(w) / 2) / u64::from(w);
    (width, u32::try_from(scaled).unwrap_or(u32::MAX).max(1))
}

/// `source` resized to `target`; with `square_crop`, the centred square of the source is
/// taken first. Returns the source itself when there is nothing to do.
fn resize<'a>(
    resizer: &mut Resizer,
    source: &'a Rgb,
    target: (u32, u32),
    square_crop: bool,
) -> Result<Cow<'a, Rgb>, MediaError> {
    let err = |e: &dyn std::fmt::Display| internal("resize", e);
    let crop_side = source.width.min(source.height);
    let is_square = source.width == source.height;
    if (source.width, source.height) == target && (!square_crop || is_square) {
        return Ok(Cow::Borrowed(source));
    }
    let src = ImageRef::new(source.width, source.height, &source.pixels, PixelType::U8x3)
        .map_err(|e| err(&e))?;
    let mut dst = Image::new(target.0, target.1, PixelType::U8x3);
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if square_crop {
        options = options.crop(
            f64::from(source.width - crop_side) / 2.0,
            f64::from(source.height - crop_side) / 2.0,
            f64::from(crop_side),
            f64::from(crop_side),
        );
    }
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| err(&e))?;
    Ok(Cow::Owned(Rgb {
        width: target.0,
        height: target.1,
        pixels: dst.into_vec(),
    }))
}

/// The image as displayed: EXIF orientation `orientation` (1..=8) applied.
pub(crate) fn orient(image: &Rgb, orientation: u8) -> Cow<'_, Rgb> {
    let (w, h) = (image.width as usize, image.height as usize);
    if orientation <= 1 || orientation > 8 || w == 0 || h == 0 {
        return Cow::Borrowed(image);
    }
    let transposed = orientation >= 5;
    let (dw, dh) = if transposed { (h, w) } else { (w, h) };
    let mut pixels = Vec::with_capacity(image.pixels.len());
    for y in 0..dh {
        for x in 0..dw {
            // Where the displayed pixel (x, y) is stored.
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),         // mirrored
                3 => (w - 1 - x, h - 1 - y), // turned 180°
                4 => (x, h - 1 - y),         // mirrored vertically
                5 => (y, x),                 // transposed
                6 => (y, h - 1 - x),         // needs turning 90° clockwise
                7 => (w - 1 - y, h - 1 - x), // transversed
                _ => (w - 1 - y, x),         // 8: needs turning 90° anticlockwise
            };
            let at = (sy * w + sx) * 3;
            pixels.extend_from_slice(image.pixels.get(at..at + 3).unwrap_or(&[0, 0, 0]));
        }
    }
    Cow::Owned(Rgb {
        width: dw as u32,
        height: dh as u32,
        pixels,
    })
}

fn encode(
    compressor: &mut Compressor,
    name: &'static str,
    image: &Rgb,
) -> Result<Variant, MediaError> {
    let jpeg = compressor
        .compress_to_vec(turbojpeg::Image {
            pixels: image.pixels.as_slice(),
            width: image.width as usize,
            pitch: image.width as usize * 3,
            height: image.height as usize,
            format: PixelFormat::RGB,
        })
        .map_err(|e| internal("JPEG encoder", e))?;
    Ok(Variant {
        name,
        width: image.width,
        height: image.height,
        jpeg,
    })
}

/// The blurhash of an upright image: 4×3 components, 3×4 when portrait.
fn blurhash(resizer: &mut Resizer, image: &Rgb) -> Result<String, MediaError> {
    let (w, h) = (image.width, image.height);
    let target = if w >= h {
        fit_width(w, h, BLURHASH_SIZE)
    } else {
        let (fh, fw) = fit_width(h, w, BLURHASH_SIZE);
        (fw, fh)
    };
    let small = resize(resizer, image, target, false)?;
    let rgba: Vec<u8> = small
        .pixels
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let (x, y) = if w >= h { (4, 3) } else { (3, 4) };
    blurhash::encode(x, y, small.width, small.height, &rgba).map_err(|e| internal("blurhash", e))
}

/// Helpers for the pipeline's tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests_support {
    use super::*;

    /// The centre square of `image`, resized to `side`.
    pub fn crop_resize(image: &Rgb, side: u32) -> Rgb {
        resize(&mut Resizer::new(), image, (side, side), true)
            .unwrap()
            .into_owned()
    }

    /// `image` as a JPEG of the pipeline's quality.
    pub fn jpeg_of(image: &Rgb) -> Vec<u8> {
        let mut compressor = Compressor::new().unwrap();
        compressor.set_quality(JPEG_QUALITY).unwrap();
        encode(&mut compressor, "test", image).unwrap().jpeg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image whose pixels are numbered 0..6 (in the red channel).
    fn numbered() -> Rgb {
        Rgb {
            width: 3,
            height: 2,
            pixels: (0..6u8).flat_map(|n| [n, 0, 0]).collect(),
        }
    }

    fn reds(image: &Rgb) -> Vec<u8> {
        image.pixels.chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn every_orientation_lands_upright() {
        // Stored:  0 1 2
        //          3 4 5
        let cases: [(u8, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [0, 1, 2, 3, 4, 5]),
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            (4, (3, 2), [3, 4, 5, 0, 1, 2]),
            (5, (2, 3), [0, 3, 1, 4, 2, 5]),
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (7, (2, 3), [5, 2, 4, 1, 3, 0]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, size, expected) in cases {
            let stored = numbered();
            let upright = orient(&stored, orientation);
            assert_eq!((upright.width, upright.height), size, "{orientation}");
            assert_eq!(reds(&upright), expected, "{orientation}");
        }
    }

    #[test]
    fn fitting_never_upscales_and_keeps_the_ratio() {
        assert_eq!(fit_width(4000, 3000, 1080), (1080, 810));
        assert_eq!(fit_width(1000, 1600, 640), (640, 1024));
        assert_eq!(fit_width(500, 300, 640), (500, 300));
        assert_eq!(fit_width(640, 480, 640), (640, 480));
        assert_eq!(fit_width(60000, 10, 640), (640, 1));
    }
}
