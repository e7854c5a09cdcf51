//! Object keys: the only strings that reach the file system, so they are parsed strictly.

use std::fmt;

use shutter_app::ports::BlobError;
use shutter_core::Id;

/// Longest variant name accepted.
const MAX_VARIANT_LEN: usize = 64;

/// A parsed object key: `files/<id>` (a file's bytes) or `files/<id>/<variant>` (an object
/// derived from them, such as a thumbnail). The id must be written as `Id` displays it
/// (lowercase, hyphenated) and the variant as 1 to 64 of `[a-z0-9_]`, so a key maps to
/// exactly one path and can never name `..` or a separator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey {
    id: Id,
    variant: Option<String>,
}

impl BlobKey {
    /// Parses a key; anything but the two forms above is [`BlobError::Other`].
    pub fn parse(key: &str) -> Result<BlobKey, BlobError> {
        let invalid = || BlobError::Other(anyhow::anyhow!("invalid blob key {key:?}"));
        let rest = key.strip_prefix("files/").ok_or_else(invalid)?;
        let (id_text, variant) = match rest.split_once('/') {
            Some((id, variant)) => (id, Some(variant)),
            None => (rest, None),
        };
        let id: Id = id_text.parse().map_err(|_| invalid())?;
        if id.to_string() != id_text {
            return Err(invalid());
        }
        if let Some(variant) = variant {
            let well_formed = (1..=MAX_VARIANT_LEN).contains(&variant.len())
                && variant
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                return Err(invalid());
            }
        }
        Ok(BlobKey {
            id,
            variant: variant.map(str::to_owned),
        })
    }

    /// The key of a file's own bytes.
    pub fn file(id: Id) -> BlobKey {
        BlobKey { id, variant: None }
    }

    /// The file the object belongs to.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The variant's name, or `None` for the file's own bytes.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(variant) => write!(f, "files/{}/{variant}", self.id),
            None => write!(f, "files/{}", self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn both_forms_parse_and_display_back() {
        let id = Id::new();
        let file = BlobKey::parse(&format!("files/{id}")).unwrap();
        assert_eq!(file, BlobKey::file(id));
        assert_eq!((file.id(), file.variant()), (id, None));
        assert_eq!(file.to_string(), format!("files/{id}"));

        let thumb = BlobKey::parse(&format!("files/{id}/thumb_320")).unwrap();
        assert_eq!((thumb.id(), thumb.variant()), (id, Some("thumb_320")));
        assert_eq!(thumb.to_string(), format!("files/{id}/thumb_320"));
    }

    #[test]
    fn everything_else_is_refused() {
        let id = Id::new();
        let upper = id.to_string().to_uppercase();
        let simple = id.as_uuid().simple().to_string();
        let long = "a".repeat(MAX_VARIANT_LEN + 1);
        for key in [
            String::new(),
            "files".into(),
            "files/".into(),
            "files/not-an-id".into(),
            format!("/files/{id}"),
            format!("other/{id}"),
            format!("files/{upper}"),
            format!("files/{simple}"),
            format!("files/urn:uuid:{id}"),
            format!("files/{id}/"),
            format!("files/{id}/.."),
            format!("files/{id}/../../etc"),
            format!("files/../{id}"),
            format!("files/{id}/a/b"),
            format!("files/{id}/Thumb"),
            format!("files/{id}/thumb.jpg"),
            format!("files/{id}/with space"),
            format!("files/{id}/{long}"),
            format!("files/{id}\0"),
        ] {
            assert!(
                matches!(BlobKey::parse(&key), Err(BlobError::Other(_))),
                "{key:?}"
            );
        }
    }
}
