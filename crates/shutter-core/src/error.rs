//! The one list of error codes a client can see. Clients branch on `code`, so these strings
//! are a stable contract: add codes, never rename them.

use serde::Serialize;

macro_rules! error_codes {
    ($($variant:ident => ($status:literal, $code:literal, $title:literal),)*) => {
        /// Every machine-readable error code of the API, with its HTTP status and title.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// All codes, in the order of the specification's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The HTTP status the code is answered with.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The stable machine-readable code, e.g. `validation_failed`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// A short human-readable summary of the problem type.
            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }
        }
    };
}

error_codes! {
    MalformedRequest => (400, "malformed_request", "The request body is not valid JSON"),
    ValidationFailed => (400, "validation_failed", "A field breaks a rule"),
    InvalidCursor => (400, "invalid_cursor", "The cursor does not parse"),
    Unauthenticated => (401, "unauthenticated", "Authentication is required"),
    TokenExpired => (401, "token_expired", "The token has expired"),
    InvalidCredentials => (401, "invalid_credentials", "Wrong username or password"),
    Forbidden => (403, "forbidden", "Not allowed"),
    InvalidSignature => (403, "invalid_signature", "The signed URL is not valid"),
    QuotaExceeded => (403, "quota_exceeded", "The storage quota would be exceeded"),
    NotFound => (404, "not_found", "Not found"),
    MethodNotAllowed => (405, "method_not_allowed", "The method is not allowed on this resource"),
    UnsupportedTusVersion => (412, "unsupported_tus_version", "The tus protocol version is not supported"),
    UsernameTaken => (409, "username_taken", "The username is taken"),
    Conflict => (409, "conflict", "The request conflicts with the current state"),
    UploadExpired => (410, "upload_expired", "The upload has expired"),
    UrlExpired => (410, "url_expired", "The URL has expired"),
    PayloadTooLarge => (413, "payload_too_large", "The request body is too large"),
    FileTooLarge => (413, "file_too_large", "The file is too large"),
    RangeNotSatisfiable => (416, "range_not_satisfiable", "The requested range is outside the file"),
    UnsupportedMediaType => (415, "unsupported_media_type", "The content type is not allowed here"),
    ChecksumMismatch => (422, "checksum_mismatch", "The bytes do not match the declared checksum"),
    ContentMismatch => (422, "content_mismatch", "The bytes are not what the declared type says"),
    SizeMismatch => (422, "size_mismatch", "The upload ended with fewer bytes than declared"),
    ImageTooLarge => (422, "image_too_large", "The image has too many pixels"),
    IdempotencyKeyReused => (422, "idempotency_key_reused", "The Idempotency-Key was used for a different request"),
    RateLimited => (429, "rate_limited", "Too many requests"),
    TooManyUploads => (429, "too_many_uploads", "Too many unfinished uploads"),
    ServiceUnavailable => (503, "service_unavailable", "A dependency is unavailable"),
    Internal => (500, "internal", "Internal error"),
}

impl ErrorCode {
    /// The problem type URI: `urn:shutter:error:<code>`.
    pub fn type_uri(self) -> String {
        format!("urn:shutter:error:{}", self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Which limit a request hit, with the limit's value and what the request would have made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitDetail {
    pub name: String,
    pub value: u64,
    pub actual: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_have_error_statuses() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!((400..600).contains(&code.status()));
        }
        // The specification's 26 codes plus `range_not_satisfiable` for downloads (416),
        // `method_not_allowed` for a known path with a method it does not serve (405) and
        // `unsupported_tus_version` for a tus request without `Tus-Resumable: 1.0.0` (412).
        assert_eq!(ErrorCode::ALL.len(), 29);
        assert_eq!(
            ErrorCode::IdempotencyKeyReused.type_uri(),
            "urn:shutter:error:idempotency_key_reused"
        );
    }
}
