//! Validated values. Each type has a private field and `parse` as its only constructor, so a
//! value that exists has passed its rules ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn char_len_between(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(FieldError::new(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    Ok(())
}

text_value!(
    /// 3..30 of `[a-z0-9_]`; input is lowercased first, so uniqueness is case-insensitive.
    Username
);

impl Username {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let lower = raw.to_lowercase();
        let ok_chars = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !(3..=30).contains(&lower.len()) || !ok_chars {
            return Err(FieldError::new(
                field,
                "must be 3 to 30 characters of a-z, 0-9 and _",
            ));
        }
        Ok(Username(lower))
    }
}

/// A password as typed: 8..128 characters. Never logged, never serialized.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        char_len_between(field, raw, 8, 128)?;
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

text_value!(
    /// A display name: at most 100 characters, no control characters.
    DisplayName
);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        char_len_between(field, raw, 0, 100)?;
        no_control_chars(field, raw, false)?;
        Ok(DisplayName(raw.to_owned()))
    }
}

text_value!(
    /// A profile biography: at most 500 characters.
    Bio
);

impl Bio {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        char_len_between(field, raw, 0, 500)?;
        no_control_chars(field, raw, true)?;
        Ok(Bio(raw.to_owned()))
    }
}

text_value!(
    /// A post caption: 1..2200 characters, not only white space.
    Caption
);

impl Caption {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        non_blank_text(field, raw)?;
        Ok(Caption(raw.to_owned()))
    }
}

text_value!(
    /// A comment's text: 1..2200 characters, not only white space.
    CommentText
);

impl CommentText {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        non_blank_text(field, raw)?;
        Ok(CommentText(raw.to_owned()))
    }
}

fn non_blank_text(field: &str, raw: &str) -> Result<(), FieldError> {
    char_len_between(field, raw, 1, 2200)?;
    if raw.trim().is_empty() {
        return Err(FieldError::new(field, "must not be blank"));
    }
    no_control_chars(field, raw, true)
}

/// Control characters break logs and terminals; line breaks are allowed where text is long.
fn no_control_chars(field: &str, raw: &str, allow_newlines: bool) -> Result<(), FieldError> {
    let bad = raw
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t')));
    if bad {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A subscription tier: what a user may upload and how fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Basic,
    Premium,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Premium => "premium",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "basic" => Some(Tier::Basic),
            "premium" => Some(Tier::Premium),
            _ => None,
        }
    }
}

/// What a user may do beyond their own resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Whether a post is visible to others yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostStatus {
    Pending,
    Published,
    Failed,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Pending => "pending",
            PostStatus::Published => "published",
            PostStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(PostStatus::Pending),
            "published" => Some(PostStatus::Published),
            "failed" => Some(PostStatus::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(
            Username::parse("u", "Alice_01")
                .map(|u| u.into_string())
                .ok(),
            Some("alice_01".into())
        );
        for bad in ["ab", "has space", "émile", &"x".repeat(31), "dash-ed"] {
            assert!(Username::parse("username", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("p", "short").is_err());
        assert!(Password::parse("p", "ééééééé").is_err());
        assert!(Password::parse("p", "éééééééé").is_ok());
        assert!(Password::parse("p", &"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("p", "secret123").ok()),
            "Some(Password(..))"
        );
    }

    #[test]
    fn captions_and_comments_need_text() {
        assert!(Caption::parse("caption", "").is_err());
        assert!(Caption::parse("caption", "   ").is_err());
        assert!(Caption::parse("caption", &"é".repeat(2200)).is_ok());
        assert!(Caption::parse("caption", &"é".repeat(2201)).is_err());
        assert!(CommentText::parse("text", "line\nbreak").is_ok());
        assert!(DisplayName::parse("display_name", "bell\u{7}").is_err());
        assert!(Bio::parse("bio", &"b".repeat(501)).is_err());
    }
}

/// Where a file is in its life: created, bytes arriving, being processed, usable, or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Pending,
    Uploading,
    Processing,
    Ready,
    Failed,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Uploading => "uploading",
            FileStatus::Processing => "processing",
            FileStatus::Ready => "ready",
            FileStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(FileStatus::Pending),
            "uploading" => Some(FileStatus::Uploading),
            "processing" => Some(FileStatus::Processing),
            "ready" => Some(FileStatus::Ready),
            "failed" => Some(FileStatus::Failed),
            _ => None,
        }
    }

    /// Still waiting for bytes: counts towards `max_concurrent_uploads`.
    pub fn is_open(self) -> bool {
        matches!(self, FileStatus::Pending | FileStatus::Uploading)
    }
}

/// Who may read a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "private" => Some(Visibility::Private),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

text_value!(
    /// A file name as the client gave it: 1..255 bytes, no control characters, no path
    /// separators (it is only ever a label and a `Content-Disposition` filename).
    FileName
);

impl FileName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > 255 {
            return Err(FieldError::new(field, "must be 1 to 255 bytes long"));
        }
        if raw.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(FieldError::new(
                field,
                "must not contain control characters or slashes",
            ));
        }
        Ok(FileName(raw.to_owned()))
    }
}

text_value!(
    /// A tag: 1..50 of `[a-z0-9_-]`, lowercased.
    Tag
);

impl Tag {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let lower = raw.to_lowercase();
        let ok = (1..=50).contains(&lower.len())
            && lower
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(FieldError::new(
                field,
                "tags are 1 to 50 characters of a-z, 0-9, _ and -",
            ));
        }
        Ok(Tag(lower))
    }

    /// At most 20 tags, each valid; duplicates are dropped, order kept.
    pub fn parse_list(field: &str, raw: &[String]) -> Result<Vec<Tag>, FieldError> {
        if raw.len() > 20 {
            return Err(FieldError::new(field, "at most 20 tags"));
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(raw.len());
        for (i, t) in raw.iter().enumerate() {
            let tag = Tag::parse(&format!("{field}[{i}]"), t)?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(tags)
    }
}

text_value!(
    /// A syntactically valid MIME type `type/subtype` (parameters dropped), lowercased.
    ContentType
);

impl ContentType {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let essence = raw
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 127
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        match essence.split_once('/') {
            Some((t, s)) if token(t) && token(s) => Ok(ContentType(essence)),
            _ => Err(FieldError::new(
                field,
                "must be a content type like image/jpeg",
            )),
        }
    }

    /// JPEG, PNG, WebP: the types that get variants and may be post media.
    pub fn is_processable_image(&self) -> bool {
        matches!(self.0.as_str(), "image/jpeg" | "image/png" | "image/webp")
    }
}

/// A lowercase hex digest of the given byte length (32 for SHA-256, 16 for MD5).
pub fn parse_hex_digest(field: &str, raw: &str, bytes: usize) -> Result<String, FieldError> {
    let lower = raw.to_ascii_lowercase();
    if lower.len() != bytes * 2 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new(
            field,
            format!("must be {} hex characters", bytes * 2),
        ));
    }
    Ok(lower)
}
