//! Image headers: type, dimensions and orientation, read without decoding a pixel.
//!
//! Each format's parser reads fixed-size fields at bounds-checked offsets of the prefix it is
//! given and allocates nothing, so a header claiming 65000×65000 costs what any other does.

mod exif;
mod gif;
mod jpeg;
mod png;
mod webp;

use crate::sniff::{
    sniff, GIF87_MAGIC, GIF89_MAGIC, IMAGE_GIF, IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP, JPEG_MAGIC,
    PNG_MAGIC,
};

/// What an image's header says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The sniffed content type (`image/jpeg`, `image/png`, `image/webp` or `image/gif`).
    pub content_type: &'static str,
    /// Width of the stored pixels, before orientation is applied; never 0.
    pub width: u32,
    /// Height of the stored pixels, before orientation is applied; never 0.
    pub height: u32,
    /// The EXIF orientation, 1..=8; 1 when the image has none (or an invalid one).
    pub orientation: u8,
}

impl ImageInfo {
    /// Whether showing the image upright turns it by a quarter (EXIF orientations 5–8).
    pub fn is_transposed(&self) -> bool {
        matches!(self.orientation, 5..=8)
    }

    /// The width as displayed, once the orientation is applied.
    pub fn display_width(&self) -> u32 {
        if self.is_transposed() {
            self.height
        } else {
            self.width
        }
    }

    /// The height as displayed, once the orientation is applied.
    pub fn display_height(&self) -> u32 {
        if self.is_transposed() {
            self.width
        } else {
            self.height
        }
    }

    /// How many pixels decoding would produce (what `media.max_pixels` limits).
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Why an image's header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The header goes on past the end of the bytes given. A caller that passed only a
    /// prefix of the file may retry with at least `needed` bytes; when the bytes were the
    /// whole file, the file is truncated.
    #[error("image header incomplete: at least {needed} bytes needed")]
    NeedMoreData {
        /// A lower bound on the prefix length that lets probing get further.
        needed: usize,
    },
    /// The bytes announce a supported format but its header is malformed.
    #[error("corrupt image header: {0}")]
    Corrupt(&'static str),
    /// Not an image this crate reads: the sniffed type, if any, is given.
    #[error("unsupported content type {}", .0.unwrap_or("(unrecognised)"))]
    Unsupported(Option<&'static str>),
}

/// Reads the type, dimensions and EXIF orientation of a JPEG, PNG, WebP or GIF from the
/// first bytes of the file. Only headers are parsed (JPEG: segments up to the first SOF
/// marker; PNG: IHDR; WebP: the first chunk; GIF: the logical screen), so a prefix of a few
/// hundred KiB is plenty for real files; a JPEG whose metadata segments are longer than the
/// prefix gets [`ProbeError::NeedMoreData`].
///
/// Never panics, and costs the same whatever dimensions the header claims.
pub fn probe(bytes: &[u8]) -> Result<ImageInfo, ProbeError> {
    match sniff(bytes) {
        Some(IMAGE_JPEG) => jpeg::probe(bytes),
        Some(IMAGE_PNG) => png::probe(bytes),
        Some(IMAGE_WEBP) => webp::probe(bytes),
        Some(IMAGE_GIF) => gif::probe(bytes),
        Some(other) => Err(ProbeError::Unsupported(Some(other))),
        None if could_become_image(bytes) => Err(ProbeError::NeedMoreData {
            needed: bytes.len() + 1,
        }),
        None => Err(ProbeError::Unsupported(None)),
    }
}

/// Whether `b` is too short to sniff but a longer input starting with it could be one of the
/// images [`probe`] reads (the empty input included).
fn could_become_image(b: &[u8]) -> bool {
    let cut_short = |magic: &[u8]| b.len() < magic.len() && magic.starts_with(b);
    let webp_cut_short = b.len() < 12
        && b"RIFF".starts_with(&b[..b.len().min(4)])
        && b.get(8..).is_none_or(|tail| b"WEBP".starts_with(tail));
    cut_short(JPEG_MAGIC)
        || cut_short(PNG_MAGIC)
        || cut_short(GIF87_MAGIC)
        || cut_short(GIF89_MAGIC)
        || webp_cut_short
}

/// Bounds-checked big- and little-endian reads: running off the end is
/// [`ProbeError::NeedMoreData`], never a panic.
fn field<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], ProbeError> {
    let end = at
        .checked_add(N)
        .ok_or(ProbeError::Corrupt("offset overflow"))?;
    match b.get(at..end) {
        Some(s) => {
            let mut out = [0u8; N];
            out.copy_from_slice(s);
            Ok(out)
        }
        None => Err(ProbeError::NeedMoreData { needed: end }),
    }
}

fn u8_at(b: &[u8], at: usize) -> Result<u8, ProbeError> {
    field::<1>(b, at).map(|[x]| x)
}

fn u16_be(b: &[u8], at: usize) -> Result<u16, ProbeError> {
    field(b, at).map(u16::from_be_bytes)
}

fn u16_le(b: &[u8], at: usize) -> Result<u16, ProbeError> {
    field(b, at).map(u16::from_le_bytes)
}

fn u32_be(b: &[u8], at: usize) -> Result<u32, ProbeError> {
    field(b, at).map(u32::from_be_bytes)
}

fn u32_le(b: &[u8], at: usize) -> Result<u32, ProbeError> {
    field(b, at).map(u32::from_le_bytes)
}

fn u24_le(b: &[u8], at: usize) -> Result<u32, ProbeError> {
    field::<3>(b, at).map(|[a, b, c]| u32::from_le_bytes([a, b, c, 0]))
}

#[cfg(test)]
mod tests;
