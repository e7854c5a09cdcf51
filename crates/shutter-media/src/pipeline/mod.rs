//! The whole image pipeline for one upload: sniff, probe, refuse bombs, decode, orient, make
//! the JPEG variants and the blurhash ([`process`]).
//!
//! Order matters and is the point: the declared type is checked against the magic bytes,
//! the header is probed and its pixel count held against [`Limits::max_pixels`], and only then
//! does a decoder see the bytes — with the probed dimensions as a contract (a decoder that
//! finds other dimensions fails the image instead of allocating for them).
//!
//! Decoders: JPEG by libjpeg-turbo (the `turbojpeg` crate), decoding at the smallest DCT
//! scale (1/8..1) that still covers the largest variant, which is most of the speed; PNG by
//! `png`; WebP by libwebp (the `webpx` crate over `libwebp-sys`, which builds libwebp's
//! bundled C source: about 2.5× as fast as the pure-Rust `image-webp` on lossy photos, on a
//! par on lossless; `examples/pipeline_bench.rs` compares the two).
//! Everything is turned into 8-bit sRGB RGB: 16-bit samples lose their low byte, gray becomes
//! RGB, alpha is composited onto white, CMYK is converted with the plain (uncalibrated)
//! formula. Pixels tagged with an RGB ICC profile other than sRGB (Display P3, Adobe RGB, …)
//! are converted to sRGB (`color`); untagged ones are taken as sRGB. Resizing is
//! `fast_image_resize` (Lanczos 3) and encoding libjpeg-turbo again (quality 82, 4:2:0),
//! which writes a JFIF header and no EXIF, XMP or ICC segment.
//!
//! Everything here is synchronous CPU work on the calling thread (no thread pool of its
//! own): callers run [`process`] on a bounded blocking pool, never on an async runtime.

mod color;
mod decode;
mod ops;

#[cfg(test)]
mod tests;

use crate::probe::{probe, ImageInfo, ProbeError};
use crate::sniff::{sniff, IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP};

pub(crate) use decode::Rgb;

/// What [`process`] refuses to take on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest image accepted, in stored pixels (width × height as the header says); larger
    /// ones fail with [`MediaError::ImageTooLarge`] before anything is decoded.
    pub max_pixels: u64,
}

impl Limits {
    /// `media.max_pixels`' default: 100 megapixels.
    pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
        }
    }
}

/// A processed image: its displayed size, blurhash and JPEG variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// Displayed width, after the EXIF orientation is applied.
    pub width: u32,
    /// Displayed height, after the EXIF orientation is applied.
    pub height: u32,
    /// The blurhash of the displayed image (4×3 components, 3×4 for portrait images).
    pub blurhash: String,
    /// `thumb`, `w640` and `w1080`, in that order.
    pub variants: Vec<Variant>,
}

/// One JPEG rendition of an image, upright, sRGB and without metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `thumb`, `w640` or `w1080`.
    pub name: &'static str,
    /// Width of the JPEG.
    pub width: u32,
    /// Height of the JPEG.
    pub height: u32,
    /// The encoded JPEG.
    pub jpeg: Vec<u8>,
}

/// Why an image could not be processed. [`MediaError::code`] gives the API's error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The header claims more pixels than [`Limits::max_pixels`]; nothing was decoded.
    #[error("image has {pixels} pixels, more than the {max} allowed")]
    ImageTooLarge {
        /// Pixels the header claims (stored width × height).
        pixels: u64,
        /// The limit in force.
        max: u64,
    },
    /// The bytes are not the declared type, or are corrupt, truncated or undecodable.
    #[error("content mismatch: {0}")]
    ContentMismatch(String),
    /// Not a type this pipeline processes (only JPEG, PNG and still WebP are).
    #[error("unsupported media type: {0}")]
    Unsupported(String),
}

impl MediaError {
    /// The API error code: `image_too_large`, `content_mismatch` or `unsupported_media_type`.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::ImageTooLarge { .. } => "image_too_large",
            MediaError::ContentMismatch(_) => "content_mismatch",
            MediaError::Unsupported(_) => "unsupported_media_type",
        }
    }
}

/// Width of the `thumb` square.
pub const THUMB_SIZE: u32 = 150;
/// Quality of every JPEG variant.
pub const JPEG_QUALITY: i32 = 82;
/// Width of the largest fitted variant, `w1080`.
const LARGEST_WIDTH: u32 = 1080;

/// Processes one uploaded image: checks that `bytes` are the `declared_type` (`image/jpeg`,
/// `image/png` or `image/webp`; parameters and case ignored), refuses it if its header
/// claims more than `limits.max_pixels`, then decodes it and makes the variants:
///
/// - `w1080` and `w640` fit that width, keeping the aspect ratio; an image narrower than the
///   width keeps its own size (never upscaled).
/// - `thumb` is a centre crop: the largest centred square, scaled to 150×150. An image whose
///   short side is under 150 gives a square thumb of that short side (a crop, never
///   upscaled), so a thumb is always square.
///
/// All variants are upright (EXIF orientation applied), 8-bit sRGB and carry no metadata.
/// Pure and synchronous; its cost is bounded by `limits`, whatever the input claims.
pub fn process(
    bytes: &[u8],
    declared_type: &str,
    limits: &Limits,
) -> Result<Processed, MediaError> {
    let declared = supported_type(declared_type)?;
    match sniff(bytes) {
        Some(found) if found == declared => {}
        Some(found) => {
            return Err(MediaError::ContentMismatch(format!(
                "declared {declared}, but the content is {found}"
            )))
        }
        None => {
            return Err(MediaError::ContentMismatch(format!(
                "declared {declared}, but the content is not a recognised image"
            )))
        }
    }
    let info = probe(bytes).map_err(|e| match e {
        ProbeError::NeedMoreData { .. } => {
            MediaError::ContentMismatch("image header truncated".to_owned())
        }
        ProbeError::Corrupt(why) => MediaError::ContentMismatch(why.to_owned()),
        ProbeError::Unsupported(_) => {
            MediaError::Unsupported(format!("{declared} variant not supported"))
        }
    })?;
    if info.pixels() > limits.max_pixels {
        return Err(MediaError::ImageTooLarge {
            pixels: info.pixels(),
            max: limits.max_pixels,
        });
    }

    let needed = needed_stored_size(&info);
    let decoded = decode::decode(bytes, &info, needed)?;
    ops::make_variants(decoded, &info)
}

/// The declared type, normalised, when it is one the pipeline takes.
fn supported_type(declared: &str) -> Result<&'static str, MediaError> {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        IMAGE_JPEG => Ok(IMAGE_JPEG),
        IMAGE_PNG => Ok(IMAGE_PNG),
        IMAGE_WEBP => Ok(IMAGE_WEBP),
        _ => Err(MediaError::Unsupported(format!(
            "{} is not image/jpeg, image/png or image/webp",
            declared.chars().take(100).collect::<String>()
        ))),
    }
}

/// The smallest stored-orientation size a decoder may hand over (a JPEG can decode at a
/// reduced DCT scale): wide enough along the displayed width for `w1080` and with a short
/// side big enough for `thumb` — or the full image where it is smaller than that.
fn needed_stored_size(info: &ImageInfo) -> (u32, u32) {
    let display_width_needed = info.display_width().min(LARGEST_WIDTH);
    let short = info.width.min(info.height);
    let short_needed = short.min(THUMB_SIZE);
    // Along each stored axis: what the displayed width needs (if it is that axis) and the
    // thumb's short side.
    let (along_width, along_height) = if info.is_transposed() {
        (short_needed, display_width_needed.max(short_needed))
    } else {
        (display_width_needed.max(short_needed), short_needed)
    };
    (along_width.min(info.width), along_height.min(info.height))
}

#[cfg(test)]
thread_local! {
    /// How many decoders this thread has started (tests check that a bomb starts none).
    pub(crate) static DECODES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}
