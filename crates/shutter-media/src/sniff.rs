//! Content types from magic bytes.

/// `image/jpeg`.
pub const IMAGE_JPEG: &str = "image/jpeg";
/// `image/png` (APNG included).
pub const IMAGE_PNG: &str = "image/png";
/// `image/gif`.
pub const IMAGE_GIF: &str = "image/gif";
/// `image/webp`.
pub const IMAGE_WEBP: &str = "image/webp";
/// `image/avif`.
pub const IMAGE_AVIF: &str = "image/avif";
/// `image/heic`.
pub const IMAGE_HEIC: &str = "image/heic";
/// `image/tiff`.
pub const IMAGE_TIFF: &str = "image/tiff";
/// `application/pdf`.
pub const APPLICATION_PDF: &str = "application/pdf";

/// How many leading bytes [`sniff`] looks at; passing more changes nothing.
pub const SNIFF_LEN: usize = 64;

pub(crate) const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
pub(crate) const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
pub(crate) const GIF87_MAGIC: &[u8] = b"GIF87a";
pub(crate) const GIF89_MAGIC: &[u8] = b"GIF89a";

/// The content type that the first bytes of a file announce, or `None` when they match
/// none of the types known here. Only the first [`SNIFF_LEN`] bytes are looked at; a
/// signature cut short by a short input does not match.
///
/// Recognised: JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF and PDF. Text formats (SVG, HTML) are
/// deliberately not recognised: they have no magic, and guessing is how browsers get
/// tricked into running scripts.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let b = bytes.get(..SNIFF_LEN).unwrap_or(bytes);
    if b.starts_with(JPEG_MAGIC) {
        Some(IMAGE_JPEG)
    } else if b.starts_with(PNG_MAGIC) {
        Some(IMAGE_PNG)
    } else if b.starts_with(GIF87_MAGIC) || b.starts_with(GIF89_MAGIC) {
        Some(IMAGE_GIF)
    } else if is_webp(b) {
        Some(IMAGE_WEBP)
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some(IMAGE_TIFF)
    } else if b.starts_with(b"%PDF-") {
        Some(APPLICATION_PDF)
    } else {
        iso_bmff_type(b)
    }
}

/// `RIFF <size> WEBP`.
pub(crate) fn is_webp(b: &[u8]) -> bool {
    b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP".as_slice())
}

/// AVIF and HEIC are ISO-BMFF files opening with an `ftyp` box: the major brand, or for
/// generic `mif1`/`msf1` files one of the compatible brands, says which.
fn iso_bmff_type(b: &[u8]) -> Option<&'static str> {
    if b.get(4..8) != Some(b"ftyp".as_slice()) {
        return None;
    }
    let box_len = usize::try_from(u32::from_be_bytes(b.get(0..4)?.try_into().ok()?)).ok()?;
    let brand_type = |brand: &[u8]| match brand {
        b"avif" | b"avis" => Some(IMAGE_AVIF),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Some(IMAGE_HEIC),
        _ => None,
    };
    let major = b.get(8..12)?;
    if let Some(found) = brand_type(major) {
        return Some(found);
    }
    if major != b"mif1" && major != b"msf1" {
        return None;
    }
    // Compatible brands follow the minor version, up to the end of the box (or of what we
    // were given).
    let end = box_len.min(b.len());
    b.get(16..end)?.chunks_exact(4).find_map(brand_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_name_their_types() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(IMAGE_JPEG));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(IMAGE_PNG));
        assert_eq!(sniff(b"GIF87a\x01\0\x01\0"), Some(IMAGE_GIF));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(IMAGE_GIF));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(IMAGE_WEBP));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(IMAGE_TIFF));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(IMAGE_TIFF));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(APPLICATION_PDF));
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"),
            Some(IMAGE_AVIF)
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf"),
            Some(IMAGE_AVIF)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some(IMAGE_HEIC)
        );
    }

    #[test]
    fn near_misses_are_nothing() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a"), None);
        assert_eq!(sniff(b"GIF88a"), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0mp41"), None);
        // mif1 without an image brand among the compatible ones, and a box length that
        // hides the brands.
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0miafMA1B"), None);
        assert_eq!(sniff(b"\0\0\0\x10ftypmif1\0\0\0\0avif"), None);
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"), None);
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), None);
    }

    #[test]
    fn only_the_first_bytes_count() {
        let mut late = vec![b' '; SNIFF_LEN];
        late.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        assert_eq!(sniff(&late), None);
    }
}
