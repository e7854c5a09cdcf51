//! WebP: the first chunk after `RIFF <size> WEBP` — lossy (`VP8 `), lossless (`VP8L`) or
//! extended (`VP8X`, which carries the canvas size).

use super::{field, u16_le, u24_le, u32_le, u8_at, ImageInfo, ProbeError};
use crate::sniff::IMAGE_WEBP;

/// Where the first chunk's payload starts: after "RIFF", the size, "WEBP", the chunk's
/// FourCC and its size.
const PAYLOAD: usize = 20;

pub(super) fn probe(b: &[u8]) -> Result<ImageInfo, ProbeError> {
    let fourcc = field::<4>(b, 12)?;
    let (width, height) = match &fourcc {
        b"VP8 " => {
            // frame tag (3 bytes; bit 0 clear on a key frame) | 9D 01 2A | width | height,
            // each 14 bits of size under 2 bits of upscaling hint.
            let tag = u8_at(b, PAYLOAD)?;
            if tag & 1 != 0 {
                return Err(ProbeError::Corrupt("WebP: first frame is not a key frame"));
            }
            if field::<3>(b, PAYLOAD + 3)? != [0x9D, 0x01, 0x2A] {
                return Err(ProbeError::Corrupt("WebP: bad VP8 start code"));
            }
            let width = u32::from(u16_le(b, PAYLOAD + 6)? & 0x3FFF);
            let height = u32::from(u16_le(b, PAYLOAD + 8)? & 0x3FFF);
            (width, height)
        }
        b"VP8L" => {
            // signature 0x2F | 14 bits width-1 | 14 bits height-1 | alpha | 3 bits version
            if u8_at(b, PAYLOAD)? != 0x2F {
                return Err(ProbeError::Corrupt("WebP: bad VP8L signature"));
            }
            let bits = u32_le(b, PAYLOAD + 1)?;
            if bits >> 29 != 0 {
                return Err(ProbeError::Corrupt("WebP: unknown VP8L version"));
            }
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            // flags (1) | reserved (3) | canvas width-1 (24 bits) | canvas height-1 (24 bits)
            if u32_le(b, 16)? < 10 {
                return Err(ProbeError::Corrupt("WebP: VP8X chunk too short"));
            }
            // An EXIF chunk that VP8X may announce sits after the image data, out of a
            // header probe's reach; its orientation is not read (WebP orientation is rare,
            // and viewers disagree on applying it).
            (u24_le(b, PAYLOAD + 4)? + 1, u24_le(b, PAYLOAD + 7)? + 1)
        }
        _ => return Err(ProbeError::Corrupt("WebP: unknown first chunk")),
    };
    if width == 0 || height == 0 {
        return Err(ProbeError::Corrupt("WebP: zero dimension"));
    }
    Ok(ImageInfo {
        content_type: IMAGE_WEBP,
        width,
        height,
        orientation: 1,
    })
}
