//! Credentials: Shutter's own HS256 access tokens and opaque refresh tokens (only their
//! SHA-256 is stored). Password hashing is in [`crate::passwords`].

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shutter_core::model::User;
use shutter_core::{ErrorCode, Id, Timestamp};

use crate::{AppError, AppResult};

/// Seconds of clock skew tolerated when checking `exp`.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of Shutter's access tokens.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tier: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Signs and verifies Shutter's access tokens. Only HS256 is accepted: the algorithm is pinned,
/// so `alg: none` and algorithm-confusion tokens fail verification.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: String, ttl: Duration) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer,
            ttl,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    pub fn issue(&self, user: &User, now: Timestamp) -> AppResult<String> {
        let iat = now.unix_seconds();
        let claims = Claims {
            sub: user.id.to_string(),
            tier: user.tier.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            iat,
            exp: iat + self.ttl.as_secs() as i64,
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies signature, algorithm, issuer and expiry; returns the user id and issue time.
    pub fn verify(&self, token: &str) -> AppResult<(Id, i64)> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(token_error)?;
        let id = data
            .claims
            .sub
            .parse::<Id>()
            .map_err(|_| AppError::unauthenticated("invalid token subject"))?;
        Ok((id, data.claims.iat))
    }
}

/// Maps a verification failure to the client's code: expiry is told apart, the rest is not.
pub fn token_error(err: jsonwebtoken::errors::Error) -> AppError {
    match err.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            AppError::new(ErrorCode::TokenExpired, "the access token has expired")
        }
        _ => AppError::unauthenticated("invalid access token"),
    }
}

/// A new opaque refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

pub fn refresh_token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutter_core::domain::{Role, Tier};

    fn user() -> User {
        User {
            id: Id::new(),
            username: "alice".into(),
            display_name: String::new(),
            bio: String::new(),
            tier: Tier::Basic,
            role: Role::User,
            created_at: Timestamp::now(),
            followers_count: 0,
            following_count: 0,
            posts_count: 0,
        }
    }

    #[test]
    fn tokens_verify_only_with_the_same_key_issuer_and_algorithm() {
        let keys = TokenKeys::new(b"secret-one", "http://a".into(), Duration::from_secs(60));
        let u = user();
        let token = keys.issue(&u, Timestamp::now()).ok().unwrap_or_default();
        assert_eq!(keys.verify(&token).ok().map(|(id, _)| id), Some(u.id));
        let other = TokenKeys::new(b"secret-two", "http://a".into(), Duration::from_secs(60));
        assert_eq!(
            other.verify(&token).err().map(|e| e.code),
            Some(ErrorCode::Unauthenticated)
        );
        let other_iss = TokenKeys::new(b"secret-one", "http://b".into(), Duration::from_secs(60));
        assert!(other_iss.verify(&token).is_err());
    }

    #[test]
    fn an_expired_token_says_so() {
        let keys = TokenKeys::new(b"k", "http://a".into(), Duration::from_secs(60));
        let old = Timestamp::now().plus_secs(-3600);
        let token = keys.issue(&user(), old).ok().unwrap_or_default();
        assert_eq!(
            keys.verify(&token).err().map(|e| e.code),
            Some(ErrorCode::TokenExpired)
        );
    }
}
