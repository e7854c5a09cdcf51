//! GIF: the logical screen descriptor, and a look at the first block after it.

use super::{u16_le, u8_at, ImageInfo, ProbeError};
use crate::sniff::IMAGE_GIF;

pub(super) fn probe(b: &[u8]) -> Result<ImageInfo, ProbeError> {
    // "GIF89a" | width (2, LE) | height (2, LE) | flags | background | aspect | [palette]
    let width = u16_le(b, 6)?;
    let height = u16_le(b, 8)?;
    let flags = u8_at(b, 10)?;
    if width == 0 || height == 0 {
        return Err(ProbeError::Corrupt("GIF: zero logical screen size"));
    }
    let palette_len = if flags & 0x80 != 0 {
        3usize << ((flags & 0x07) + 1)
    } else {
        0
    };
    // The first block must be an extension or an image. This is what tells a GIF from a
    // text file that merely starts with "GIF89a" (an HTML polyglot, say).
    match u8_at(b, 13 + palette_len)? {
        0x21 | 0x2C => Ok(ImageInfo {
            content_type: IMAGE_GIF,
            width: u32::from(width),
            height: u32::from(height),
            orientation: 1,
        }),
        _ => Err(ProbeError::Corrupt("GIF: no image or extension block")),
    }
}
