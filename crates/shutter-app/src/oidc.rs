//! Tokens from an external OpenID Connect provider (Auth0, Keycloak, …), verified against the
//! provider's JWKS. Keys are cached and fetched again when a token names an unknown key id,
//! at most once per [`REFETCH_INTERVAL`] so a flood of bogus key ids cannot hammer the
//! provider.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use shutter_core::config::OidcConfig;
use tokio::sync::RwLock;

use crate::auth::{token_error, LEEWAY_SECS};
use crate::{AppError, AppResult};

const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const MAX_AGE: Duration = Duration::from_secs(600);

/// What Shutter reads from a verified provider token.
#[derive(Clone, Debug)]
pub struct ExternalIdentity {
    pub issuer: String,
    pub subject: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub tier: Option<String>,
    pub issued_at: Option<i64>,
}

#[derive(Deserialize)]
struct ProviderClaims {
    sub: String,
    iat: Option<i64>,
    preferred_username: Option<String>,
    name: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

struct CachedKeys {
    keys: JwkSet,
    fetched: Instant,
}

/// Verifies provider tokens: RS256 or ES256 only, the configured issuer and audience, expiry.
pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    cache: RwLock<Option<CachedKeys>>,
}

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        OidcVerifier {
            config,
            http,
            cache: RwLock::new(None),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub async fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> AppResult<ExternalIdentity> {
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AppError::unauthenticated("unsupported token algorithm"));
        }
        let key = self.key_for(kid, alg).await?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let data = jsonwebtoken::decode::<ProviderClaims>(token, &key, &validation)
            .map_err(token_error)?;
        let claims = data.claims;
        let tier = self
            .config
            .tier_claim
            .as_ref()
            .and_then(|name| claims.rest.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        Ok(ExternalIdentity {
            issuer: self.config.issuer.clone(),
            subject: claims.sub,
            preferred_username: claims.preferred_username,
            name: claims.name,
            tier,
            issued_at: claims.iat,
        })
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> AppResult<DecodingKey> {
        {
            let cache = self.cache.read().await;
            if let Some(cached) = cache.as_ref() {
                let fresh = cached.fetched.elapsed() < MAX_AGE;
                if let Some(key) = find_key(&cached.keys, kid, alg)? {
                    if fresh {
                        return Ok(key);
                    }
                } else if cached.fetched.elapsed() < REFETCH_INTERVAL {
                    return Err(AppError::unauthenticated("unknown signing key"));
                }
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed the keys while this one waited.
        let stale = cache
            .as_ref()
            .is_none_or(|c| c.fetched.elapsed() >= REFETCH_INTERVAL);
        if stale {
            let keys = self.fetch().await?;
            *cache = Some(CachedKeys {
                keys,
                fetched: Instant::now(),
            });
        }
        let keys = cache.as_ref().map(|c| &c.keys);
        match keys.map(|k| find_key(k, kid, alg)).transpose()?.flatten() {
            Some(key) => Ok(key),
            None => Err(AppError::unauthenticated("unknown signing key")),
        }
    }

    async fn fetch(&self) -> AppResult<JwkSet> {
        let response = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AppError::unavailable(anyhow::anyhow!("fetching JWKS: {e}")))?;
        response
            .json::<JwkSet>()
            .await
            .map_err(|e| AppError::unavailable(anyhow::anyhow!("reading JWKS: {e}")))
    }
}

/// The key named by `kid` (or the only key when the token names none) if it suits `alg`.
fn find_key(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> AppResult<Option<DecodingKey>> {
    let jwk = match kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    };
    let Some(jwk) = jwk else { return Ok(None) };
    let family_ok = matches!(
        (&jwk.algorithm, alg),
        (AlgorithmParameters::RSA(_), Algorithm::RS256)
            | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
    );
    if !family_ok {
        return Err(AppError::unauthenticated(
            "token algorithm does not match its key",
        ));
    }
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|_| AppError::unauthenticated("unusable signing key"))
}
