//! Accounts: registration, sessions (login, refresh with rotation, logout), who is calling,
//! profiles, tiers and roles, deletion.

use jsonwebtoken::Algorithm;
use shutter_core::domain::{Bio, DisplayName, Password, Role, Tier, Username};
use shutter_core::error::FieldError;
use shutter_core::model::User;
use shutter_core::{ErrorCode, Id, Timestamp};

use crate::auth::{new_refresh_token, refresh_token_hash};
use crate::oidc::ExternalIdentity;
use crate::passwords::{hash_password, verify_password};
use crate::ports::{NewRefreshToken, NewUser, RefreshSuccessor, RefreshUse, RepoError};
use crate::{AppError, AppResult, Shutter};

/// A signed-in session: the user and a fresh token pair.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// Who is calling, resolved from a bearer token against the current user row, so a tier or
/// role change applies from the next request and a deleted user is refused at once.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    /// Signed in through the external identity provider.
    pub external: bool,
    /// The token's `iat` (seconds), used where recent authentication is required.
    pub issued_at: i64,
}

impl Principal {
    pub fn id(&self) -> Id {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

#[derive(Clone, Debug, Default)]
pub struct RegisterInput {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub bio: Option<String>,
}

/// A tier's limits and the user's current usage, as `GET /v1/limits` shows them.
#[derive(Clone, Debug)]
pub struct LimitsView {
    pub tier: Tier,
    pub max_file_size: u64,
    pub max_concurrent_uploads: u32,
    pub storage_quota: u64,
    pub posts_per_minute: u32,
    pub max_pixels: u64,
    pub post_media_types: Vec<&'static str>,
    pub bytes_stored: u64,
    pub uploads_open: u64,
}

/// Content types a post's photos may have.
pub const POST_MEDIA_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// How many random fallback usernames an external user's creation draws before giving up.
const FALLBACK_USERNAME_TRIES: usize = 5;

/// The username of an external user whose token names no usable one: `user_` and 10 random
/// characters of `[a-z0-9]` (about 52 bits), so it cannot be predicted from the identity and
/// a taken one is simply drawn again.
fn random_username() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("user_{suffix}")
}

/// How recent an external token must be to delete an account (no password to ask for).
const RECENT_AUTH_SECS: i64 = 300;

fn collect<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

impl Shutter {
    pub async fn register(&self, input: RegisterInput) -> AppResult<Session> {
        let mut errors = Vec::new();
        let username = collect(&mut errors, Username::parse("username", &input.username));
        let password = collect(&mut errors, Password::parse("password", &input.password));
        let display_name = match &input.display_name {
            Some(d) => collect(&mut errors, DisplayName::parse("display_name", d)),
            None => None,
        };
        let (Some(username), Some(password)) = (username, password) else {
            return Err(AppError::validation(errors));
        };
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let hash = hash_password(password.expose().to_owned()).await?;
        let new = NewUser {
            id: Id::new(),
            display_name: display_name.map(|d| d.into_string()).unwrap_or_default(),
            username: username.into_string(),
            password_hash: Some(hash),
            external: None,
            tier: Tier::Basic,
            role: Role::User,
            created_at: self.clock.now(),
        };
        let user = self.repo.create_user(new).await.map_err(|e| match e {
            RepoError::Conflict(_) => {
                AppError::new(ErrorCode::UsernameTaken, "the username is taken")
            }
            other => other.into(),
        })?;
        tracing::info!(user.id = %user.id, "user registered");
        self.start_session(user, Id::new()).await
    }

    pub async fn login(&self, username: &str, password: &str) -> AppResult<Session> {
        let bad = || AppError::new(ErrorCode::InvalidCredentials, "wrong username or password");
        let user = match Username::parse("username", username) {
            Ok(name) => self.repo.user_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let hash = match &user {
            Some(u) => self.repo.password_hash(u.id).await?,
            None => None,
        };
        // Verify even for unknown users so timing does not tell which usernames exist.
        let ok = verify_password(password.to_owned(), hash).await?;
        match user {
            Some(user) if ok => self.start_session(user, Id::new()).await,
            _ => Err(bad()),
        }
    }

    /// Rotates a refresh token. Presenting one that was already rotated is taken as theft:
    /// the whole family is revoked, including the newest token.
    pub async fn refresh(&self, refresh_token: &str) -> AppResult<Session> {
        let hash = refresh_token_hash(refresh_token);
        let now = self.clock.now();
        // The successor is stored in the same transaction that uses the presented token, so
        // a replay's revocation of the family cannot miss it.
        let (successor, successor_hash) = new_refresh_token();
        let stored = RefreshSuccessor {
            token_hash: successor_hash,
            expires_at: now.plus_secs(self.refresh_ttl_secs()),
        };
        match self.repo.rotate_refresh_token(&hash, stored, now).await? {
            RefreshUse::Fresh { user_id, .. } => {
                let user = self
                    .repo
                    .user_by_id(user_id)
                    .await?
                    .ok_or_else(|| AppError::unauthenticated("invalid refresh token"))?;
                Ok(Session {
                    access_token: self.tokens.issue(&user, now)?,
                    user,
                    refresh_token: successor,
                    expires_in: self.tokens.ttl_secs(),
                })
            }
            RefreshUse::Reused { family_id } => {
                self.repo.revoke_refresh_family(family_id).await?;
                tracing::warn!(family.id = %family_id, "refresh token reused; family revoked");
                Err(AppError::unauthenticated("invalid refresh token"))
            }
            RefreshUse::Unknown => Err(AppError::unauthenticated("invalid refresh token")),
        }
    }

    /// Ends the session the refresh token belongs to. Unknown tokens are ignored: the
    /// outcome the client wants (that token no longer works) holds either way.
    pub async fn logout(&self, refresh_token: &str) -> AppResult<()> {
        let hash = refresh_token_hash(refresh_token);
        if let Some(family) = self.repo.refresh_family_of(&hash).await? {
            self.repo.revoke_refresh_family(family).await?;
        }
        Ok(())
    }

    fn refresh_ttl_secs(&self) -> i64 {
        self.config.auth.refresh_token_ttl.get().as_secs() as i64
    }

    async fn start_session(&self, user: User, family_id: Id) -> AppResult<Session> {
        let now = self.clock.now();
        let access_token = self.tokens.issue(&user, now)?;
        let (refresh_token, token_hash) = new_refresh_token();
        let ttl = self.refresh_ttl_secs();
        self.repo
            .insert_refresh_token(NewRefreshToken {
                token_hash,
                family_id,
                user_id: user.id,
                created_at: now,
                expires_at: now.plus_secs(ttl),
            })
            .await?;
        Ok(Session {
            user,
            access_token,
            refresh_token,
            expires_in: self.tokens.ttl_secs(),
        })
    }

    /// Resolves a bearer token: Shutter's own HS256 tokens, or RS256/ES256 tokens of the
    /// configured identity provider. Anything else is `unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> AppResult<Principal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AppError::unauthenticated("invalid access token"))?;
        match header.alg {
            Algorithm::HS256 => {
                let (id, iat) = self.tokens.verify(token)?;
                let user = self
                    .repo
                    .user_by_id(id)
                    .await?
                    .ok_or_else(|| AppError::unauthenticated("the account no longer exists"))?;
                Ok(Principal {
                    user,
                    external: false,
                    issued_at: iat,
                })
            }
            alg @ (Algorithm::RS256 | Algorithm::ES256) => {
                let oidc = self
                    .oidc
                    .as_ref()
                    .ok_or_else(|| AppError::unauthenticated("invalid access token"))?;
                let identity = oidc.verify(token, alg, header.kid.as_deref()).await?;
                let issued_at = identity.issued_at.unwrap_or(0);
                let user = self.external_user(identity).await?;
                Ok(Principal {
                    user,
                    external: true,
                    issued_at,
                })
            }
            _ => Err(AppError::unauthenticated("unsupported token algorithm")),
        }
    }

    /// The user behind an external identity, created on first sight; the tier follows the
    /// configured claim when the token carries it.
    async fn external_user(&self, id: ExternalIdentity) -> AppResult<User> {
        let claimed_tier = id.tier.as_deref().and_then(Tier::parse);
        if let Some(user) = self.repo.user_by_external(&id.issuer, &id.subject).await? {
            return match claimed_tier {
                Some(tier) if tier != user.tier => self
                    .repo
                    .set_tier(user.id, tier)
                    .await?
                    .ok_or_else(|| AppError::unauthenticated("the account no longer exists")),
                _ => Ok(user),
            };
        }
        // A deleted account stays deleted: its identity does not sign up again.
        if self
            .repo
            .external_identity_deleted(&id.issuer, &id.subject)
            .await?
        {
            return Err(AppError::unauthenticated("this account was deleted"));
        }
        let preferred = id
            .preferred_username
            .as_deref()
            .and_then(|p| Username::parse("username", p).ok())
            .map(Username::into_string);
        let display_name = id
            .name
            .as_deref()
            .and_then(|n| DisplayName::parse("display_name", n).ok())
            .map(DisplayName::into_string)
            .unwrap_or_default();
        let fallbacks = std::iter::repeat_with(random_username).take(FALLBACK_USERNAME_TRIES);
        for username in preferred.into_iter().chain(fallbacks) {
            let new = NewUser {
                id: Id::new(),
                username,
                display_name: display_name.clone(),
                password_hash: None,
                external: Some((id.issuer.clone(), id.subject.clone())),
                tier: claimed_tier.unwrap_or(Tier::Basic),
                role: Role::User,
                created_at: self.clock.now(),
            };
            match self.repo.create_user(new).await {
                Ok(user) => {
                    tracing::info!(user.id = %user.id, "external user created");
                    return Ok(user);
                }
                // The username was taken, or a concurrent request created this identity.
                Err(RepoError::Conflict(_)) => {
                    if let Some(user) = self.repo.user_by_external(&id.issuer, &id.subject).await? {
                        return Ok(user);
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            "no free username for this identity",
        ))
    }

    pub async fn user(&self, id: Id) -> AppResult<User> {
        self.repo
            .user_by_id(id)
            .await?
            .ok_or_else(|| AppError::not_found("user"))
    }

    pub async fn user_by_username(&self, username: &str) -> AppResult<User> {
        let Ok(name) = Username::parse("username", username) else {
            return Err(AppError::not_found("user"));
        };
        self.repo
            .user_by_username(name.as_str())
            .await?
            .ok_or_else(|| AppError::not_found("user"))
    }

    pub async fn update_profile(&self, who: &Principal, change: ProfileChange) -> AppResult<User> {
        let mut errors = Vec::new();
        let display_name = change.display_name.map(|d| {
            collect(&mut errors, DisplayName::parse("display_name", &d))
                .map(DisplayName::into_string)
        });
        let bio = change
            .bio
            .map(|b| collect(&mut errors, Bio::parse("bio", &b)).map(Bio::into_string));
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let display_name = display_name.flatten();
        // The author's name is in every cached post of theirs.
        let forget = display_name
            .is_some()
            .then(|| self.posts_cache.clear_after());
        let updated = self
            .repo
            .update_profile(who.id(), display_name, bio.flatten())
            .await;
        if let Some(forget) = forget {
            forget.done();
        }
        updated?.ok_or_else(|| AppError::not_found("user"))
    }

    /// Deletes the caller's account and everything it owns. Password users confirm with the
    /// password; external users with a token issued in the last five minutes.
    pub async fn delete_account(&self, who: &Principal, password: Option<&str>) -> AppResult<()> {
        if who.external {
            let age = self.clock.now().unix_seconds() - who.issued_at;
            if age > RECENT_AUTH_SECS {
                return Err(AppError::new(
                    ErrorCode::InvalidCredentials,
                    "sign in again: deleting an account needs a token issued in the last 5 minutes",
                ));
            }
        } else {
            let hash = self.repo.password_hash(who.id()).await?;
            let ok = verify_password(password.unwrap_or_default().to_owned(), hash).await?;
            if !ok {
                return Err(AppError::new(
                    ErrorCode::InvalidCredentials,
                    "wrong password",
                ));
            }
        }
        // Its posts go, and its comments and likes on others' posts change their counts.
        let forget = self.posts_cache.clear_after();
        let deleted = self
            .media
            .delete_user_with_objects(who.id(), self.clock.now())
            .await;
        forget.done();
        deleted?;
        self.uploads.content.invalidate();
        self.wake_workers();
        tracing::info!(user.id = %who.id(), "account deleted");
        Ok(())
    }

    /// `PATCH /v1/admin/users/{id}`: only admins may change tiers and roles.
    pub async fn admin_update_user(
        &self,
        who: &Principal,
        id: Id,
        tier: Option<Tier>,
        role: Option<Role>,
    ) -> AppResult<User> {
        if !who.is_admin() {
            return Err(AppError::forbidden("only admins may change users"));
        }
        let mut user = self.user(id).await?;
        if let Some(tier) = tier {
            user = self
                .repo
                .set_tier(id, tier)
                .await?
                .ok_or_else(|| AppError::not_found("user"))?;
        }
        if let Some(role) = role {
            user = self
                .repo
                .set_role(id, role)
                .await?
                .ok_or_else(|| AppError::not_found("user"))?;
        }
        tracing::info!(user.id = %id, admin.id = %who.id(), tier = user.tier.as_str(), role = user.role.as_str(), "user changed by admin");
        Ok(user)
    }

    /// The command-line form of the admin change, by username.
    pub async fn set_tier_by_username(&self, username: &str, tier: Tier) -> AppResult<User> {
        let user = self.user_by_username(username).await?;
        self.repo
            .set_tier(user.id, tier)
            .await?
            .ok_or_else(|| AppError::not_found("user"))
    }

    pub async fn set_role_by_username(&self, username: &str, role: Role) -> AppResult<User> {
        let user = self.user_by_username(username).await?;
        self.repo
            .set_role(user.id, role)
            .await?
            .ok_or_else(|| AppError::not_found("user"))
    }

    pub async fn limits(&self, who: &Principal) -> AppResult<LimitsView> {
        let limits = self.config.tier_limits(who.user.tier);
        let usage = self.files.usage(who.id()).await?;
        Ok(LimitsView {
            tier: who.user.tier,
            max_file_size: limits.max_file_size.bytes(),
            max_concurrent_uploads: limits.max_concurrent_uploads,
            storage_quota: limits.storage_quota.bytes(),
            posts_per_minute: limits.posts_per_minute,
            max_pixels: self.config.media.max_pixels,
            post_media_types: POST_MEDIA_TYPES.to_vec(),
            bytes_stored: usage.bytes_stored,
            uploads_open: usage.uploads_open,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
