//! JPEG: walk the marker segments from SOI to the first SOF (start of frame), which holds
//! the dimensions, reading the EXIF orientation from the first `Exif` APP1 on the way.

use super::{exif, u16_be, u8_at, ImageInfo, ProbeError};
use crate::sniff::IMAGE_JPEG;

const APP1: u8 = 0xE1;
const EXIF_HEADER: &[u8] = b"Exif\0\0";

/// Whether a marker starts a frame: SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
/// Baseline, extended, progressive, lossless and the arithmetic-coded variants all carry
/// the dimensions at the same place.
fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

pub(super) fn probe(b: &[u8]) -> Result<ImageInfo, ProbeError> {
    let mut pos = 2; // after SOI
    let mut orientation = None;
    let mut exif_seen = false;
    loop {
        if u8_at(b, pos)? != 0xFF {
            return Err(ProbeError::Corrupt("JPEG: expected a marker"));
        }
        // Any number of 0xFF fill bytes may precede a marker code.
        pos += 1;
        let mut marker = u8_at(b, pos)?;
        while marker == 0xFF {
            pos += 1;
            marker = u8_at(b, pos)?;
        }
        pos += 1;
        match marker {
            0xD8 => return Err(ProbeError::Corrupt("JPEG: a second start of image")),
            0xD9 => return Err(ProbeError::Corrupt("JPEG: end of image before a frame")),
            0xDA => return Err(ProbeError::Corrupt("JPEG: scan before a frame header")),
            0x00 => return Err(ProbeError::Corrupt("JPEG: expected a marker")),
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16_be(b, pos)?);
        if len < 2 {
            return Err(ProbeError::Corrupt("JPEG: segment length below 2"));
        }
        let body = pos + 2;
        let end = pos + len;
        if is_sof(marker) {
            if len < 8 {
                return Err(ProbeError::Corrupt("JPEG: frame header too short"));
            }
            let height = u16_be(b, body + 1)?;
            let width = u16_be(b, body + 3)?;
            let components = u8_at(b, body + 5)?;
            if components == 0 {
                return Err(ProbeError::Corrupt("JPEG: frame without components"));
            }
            if width == 0 {
                return Err(ProbeError::Corrupt("JPEG: zero width"));
            }
            if height == 0 {
                // Legal but vanishingly rare: the height comes in a DNL marker after the
                // first scan, which a header probe does not reach.
                return Err(ProbeError::Unsupported(Some(IMAGE_JPEG)));
            }
            return Ok(ImageInfo {
                content_type: IMAGE_JPEG,
                width: u32::from(width),
                height: u32::from(height),
                orientation: orientation.unwrap_or(1),
            });
        }
        if marker == APP1 && !exif_seen {
            // The whole segment must be there before the walk can go past it anyway.
            let segment = b
                .get(body..end)
                .ok_or(ProbeError::NeedMoreData { needed: end })?;
            if let Some(tiff) = segment.strip_prefix(EXIF_HEADER) {
                // Only the first EXIF block counts, as in every decoder; a broken one
                // leaves the orientation at 1 rather than failing the image.
                exif_seen = true;
                orientation = exif::orientation(tiff);
            }
        }
        pos = end;
    }
}
