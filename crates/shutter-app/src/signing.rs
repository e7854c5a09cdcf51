//! HMAC-signed URLs for the built-in store. A signature binds the method, the object (file
//! and variant), the expiry and, for uploads, the declared size and content type, so none of
//! them can be changed without the server noticing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers.
#[derive(Clone, Copy, Debug)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    /// `<file id>` or `<file id>/<variant>`; public download URLs add `:public`.
    pub object: &'a str,
    /// Unix seconds; 0 for URLs that never expire (public files).
    pub expires: i64,
    pub size: Option<u64>,
    pub content_type: Option<&'a str>,
}

impl SignedParts<'_> {
    fn message(&self) -> String {
        format!(
            "shutter-url-v1\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.object,
            self.expires,
            self.size.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            self.content_type.unwrap_or("-")
        )
    }
}

/// Signs and checks URLs with the server's URL-signing secret.
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    pub fn new(key: Vec<u8>) -> Self {
        UrlSigner { key }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    pub fn sign(&self, parts: SignedParts<'_>) -> String {
        let mut mac = self.mac();
        mac.update(parts.message().as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Constant-time comparison of a presented signature.
    pub fn verify(&self, parts: SignedParts<'_>, signature: &str) -> bool {
        let Ok(presented) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(parts.message().as_bytes());
        mac.verify_slice(&presented).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(expires: i64, size: u64) -> SignedParts<'static> {
        SignedParts {
            method: "PUT",
            object: "0190-abc",
            expires,
            size: Some(size),
            content_type: Some("image/jpeg"),
        }
    }

    #[test]
    fn any_changed_part_breaks_the_signature() {
        let signer = UrlSigner::new(b"k".to_vec());
        let sig = signer.sign(parts(100, 5));
        assert!(signer.verify(parts(100, 5), &sig));
        assert!(!signer.verify(parts(101, 5), &sig));
        assert!(!signer.verify(parts(100, 6), &sig));
        let get = SignedParts {
            method: "GET",
            ..parts(100, 5)
        };
        assert!(!signer.verify(get, &sig));
        assert!(!UrlSigner::new(b"other".to_vec()).verify(parts(100, 5), &sig));
        assert!(!signer.verify(parts(100, 5), "not base64!"));
    }
}
