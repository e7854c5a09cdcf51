//! Just enough TIFF to find the Orientation tag (0x0112) in an EXIF block's IFD0.

/// The orientation recorded in IFD0 of a TIFF structure (the EXIF payload after
/// `Exif\0\0`), when present and valid (1..=8).
pub(super) fn orientation(tiff: &[u8]) -> Option<u8> {
    const ORIENTATION: u16 = 0x0112;
    const SHORT: u16 = 3;

    let little_endian = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let bytes: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    };

    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd0)?);
    // At most 65535 entries of 12 bytes, and the loop stops at the end of the block: the
    // work is bounded by the input, not by what the count claims.
    for i in 0..entries {
        let entry = ifd0.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        let tag = u16_at(entry)?;
        if tag != ORIENTATION {
            continue;
        }
        let kind = u16_at(entry + 2)?;
        let count = u32_at(entry + 4)?;
        if kind != SHORT || count == 0 {
            return None;
        }
        // A single SHORT sits in the first two bytes of the value field.
        let value = u16_at(entry + 8)?;
        return u8::try_from(value).ok().filter(|v| (1..=8).contains(v));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::orientation;

    fn tiff_be(entries: &[(u16, u16, u32, [u8; 4])]) -> Vec<u8> {
        let mut t = b"MM\0*\0\0\0\x08".to_vec();
        t.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for (tag, kind, count, value) in entries {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&kind.to_be_bytes());
            t.extend_from_slice(&count.to_be_bytes());
            t.extend_from_slice(value);
        }
        t.extend_from_slice(&[0; 4]);
        t
    }

    #[test]
    fn finds_orientation_in_either_byte_order() {
        let be = tiff_be(&[(0x010F, 2, 4, *b"ACME"), (0x0112, 3, 1, [0, 6, 0, 0])]);
        assert_eq!(orientation(&be), Some(6));

        let mut le = b"II*\0\x08\0\0\0\x01\0".to_vec();
        le.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(orientation(&le), Some(8));
    }

    #[test]
    fn bad_or_missing_orientation_is_none() {
        assert_eq!(orientation(&tiff_be(&[(0x010F, 2, 4, *b"ACME")])), None);
        assert_eq!(orientation(&tiff_be(&[(0x0112, 3, 1, [0, 9, 0, 0])])), None);
        assert_eq!(orientation(&tiff_be(&[(0x0112, 3, 1, [0, 0, 0, 0])])), None);
        assert_eq!(orientation(&tiff_be(&[(0x0112, 4, 1, [0, 0, 0, 6])])), None);
        assert_eq!(orientation(b"MM\0*\xFF\xFF\xFF\xFF"), None);
        assert_eq!(orientation(b"XX\0*\0\0\0\x08"), None);
        assert_eq!(orientation(b""), None);
        // A count claiming 65535 entries in a block holding one.
        let mut liar = tiff_be(&[(0x010F, 2, 4, *b"ACME")]);
        liar[8] = 0xFF;
        liar[9] = 0xFF;
        assert_eq!(orientation(&liar), None);
    }
}
