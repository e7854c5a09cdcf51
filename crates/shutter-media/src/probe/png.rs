//! PNG: the IHDR chunk, which must come first.

use super::{u32_be, u8_at, ImageInfo, ProbeError};
use crate::sniff::IMAGE_PNG;

/// Largest dimension the PNG specification allows (2^31 - 1).
const MAX_DIMENSION: u32 = i32::MAX as u32;

pub(super) fn probe(b: &[u8]) -> Result<ImageInfo, ProbeError> {
    // signature (8) | length (4) | "IHDR" | 13 bytes of data | CRC (4)
    if u32_be(b, 8)? != 13 {
        return Err(ProbeError::Corrupt("PNG: IHDR length is not 13"));
    }
    if super::field::<4>(b, 12)? != *b"IHDR" {
        return Err(ProbeError::Corrupt("PNG: first chunk is not IHDR"));
    }
    let width = u32_be(b, 16)?;
    let height = u32_be(b, 20)?;
    let bit_depth = u8_at(b, 24)?;
    let color_type = u8_at(b, 25)?;
    let compression = u8_at(b, 26)?;
    let filter = u8_at(b, 27)?;
    let interlace = u8_at(b, 28)?;
    let crc = u32_be(b, 29)?;
    if crc32(&super::field::<17>(b, 12)?) != crc {
        return Err(ProbeError::Corrupt("PNG: IHDR checksum mismatch"));
    }
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ProbeError::Corrupt("PNG: dimension out of range"));
    }
    let depth_ok = match color_type {
        0 => matches!(bit_depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(bit_depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(bit_depth, 8 | 16),
        _ => false,
    };
    if !depth_ok || compression != 0 || filter != 0 || interlace > 1 {
        return Err(ProbeError::Corrupt("PNG: invalid IHDR fields"));
    }
    // PNG's own orientation (an eXIf chunk) is rare and comes after IHDR; not read here.
    Ok(ImageInfo {
        content_type: IMAGE_PNG,
        width,
        height,
        orientation: 1,
    })
}

/// CRC-32 (IEEE, reflected), bit by bit: it only ever sees the 17 bytes of an IHDR.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
