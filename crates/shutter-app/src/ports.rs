//! Ports: what the use cases need from the outside world. Adapters live in other crates
//! (`shutter-store` for [`Repo`]); the embedded and scale-out adapters of a port must behave
//! the same, which the conformance suites check.

use async_trait::async_trait;
use shutter_core::domain::{PostStatus, Role, Tier};
use shutter_core::model::{Comment, PostRecord, User};
use shutter_core::{Id, Page, PageRequest, Timestamp};

/// A failure of a storage adapter.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A uniqueness or reference rule of the data was broken; the text names which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("database error")]
    Other(#[source] anyhow::Error),
}

pub type RepoResult<T> = Result<T, RepoError>;

/// A user account to create. Exactly one of `password_hash` and `external` is set.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    /// `(issuer, subject)` of an external identity provider.
    pub external: Option<(String, String)>,
    pub tier: Tier,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A refresh token to store. Only its SHA-256 hash is kept.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: Id,
    pub user_id: Id,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token was live and is now marked used (atomically: of two racing presentations
    /// exactly one gets `Fresh`).
    Fresh {
        user_id: Id,
        family_id: Id,
        expires_at: Timestamp,
    },
    /// The token exists but was already used or revoked: a replay. The caller revokes the family.
    Reused { family_id: Id },
    /// No such token.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct NewPost {
    pub id: Id,
    pub author_id: Id,
    pub caption: String,
    pub status: PostStatus,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewComment {
    pub id: Id,
    pub post_id: Id,
    pub author_id: Id,
    pub text: String,
    pub created_at: Timestamp,
}

/// The start of an idempotent request, as recorded under `(user_id, key)`.
#[derive(Clone, Debug)]
pub struct IdempotencyStart {
    pub user_id: Id,
    pub key: String,
    /// SHA-256 (hex) of method, path and body: the same key with another hash is a misuse.
    pub request_hash: String,
    pub now: Timestamp,
    /// Records created before this instant are forgotten (24 h window).
    pub expired_before: Timestamp,
    /// Records still in flight that started before this instant were abandoned by a crashed
    /// process and may be taken over.
    pub stale_before: Timestamp,
}

/// What the idempotency record said about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First time (or the old record had expired): go ahead, then `idempotency_complete`.
    Started,
    /// Done before with the same request: answer this again.
    Replay { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Metadata storage. One adapter per database dialect; every method is one transaction.
#[async_trait]
pub trait Repo: Send + Sync + 'static {
    /// Answers when the database does.
    async fn ping(&self) -> RepoResult<()>;

    // --- users ---

    /// Creates a user. A taken username (case-insensitive) or external identity is
    /// `RepoError::Conflict("username")` / `Conflict("external_identity")`.
    async fn create_user(&self, new: NewUser) -> RepoResult<User>;
    async fn user_by_id(&self, id: Id) -> RepoResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> RepoResult<Option<User>>;
    async fn user_by_external(&self, issuer: &str, subject: &str) -> RepoResult<Option<User>>;
    /// The stored Argon2 hash; `None` for an unknown user or one without a password.
    async fn password_hash(&self, user_id: Id) -> RepoResult<Option<String>>;
    /// Sets the given profile fields; `None` leaves a field as it is. `None` if no such user.
    async fn update_profile(
        &self,
        id: Id,
        display_name: Option<String>,
        bio: Option<String>,
    ) -> RepoResult<Option<User>>;
    async fn set_tier(&self, id: Id, tier: Tier) -> RepoResult<Option<User>>;
    async fn set_role(&self, id: Id, role: Role) -> RepoResult<Option<User>>;
    /// Deletes the user and everything they own (posts, comments on and by them, refresh
    /// tokens, idempotency records), keeping other users' counters exact. `false` if absent.
    async fn delete_user(&self, id: Id) -> RepoResult<bool>;

    // --- refresh tokens ---

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> RepoResult<()>;
    /// Marks the token used if it is live (not used, not revoked, not expired at `now`).
    /// An expired unused token is `Unknown`.
    async fn use_refresh_token(&self, token_hash: &str, now: Timestamp) -> RepoResult<RefreshUse>;
    /// Revokes every token of the family.
    async fn revoke_refresh_family(&self, family_id: Id) -> RepoResult<()>;
    /// The family a token belongs to, if the token exists (used or not).
    async fn refresh_family_of(&self, token_hash: &str) -> RepoResult<Option<Id>>;

    // --- posts ---

    /// Creates the post; a `published` post adds one to its author's `posts_count`.
    async fn create_post(&self, new: NewPost) -> RepoResult<PostRecord>;
    /// The post with `liked_by_me` computed for `viewer`, whatever its status.
    async fn post_by_id(&self, id: Id, viewer: Option<Id>) -> RepoResult<Option<PostRecord>>;
    /// Sets the caption and `updated_at`; the updated post, or `None` if absent.
    async fn update_post_caption(
        &self,
        id: Id,
        caption: String,
        now: Timestamp,
    ) -> RepoResult<Option<PostRecord>>;
    /// Deletes the post with its comments and likes; a published post takes one from its
    /// author's `posts_count`. `false` if absent.
    async fn delete_post(&self, id: Id) -> RepoResult<bool>;
    /// The author's posts, newest first by `(created_at, id)`; only published ones unless
    /// `include_unpublished`.
    async fn posts_by_author(
        &self,
        author_id: Id,
        include_unpublished: bool,
        viewer: Option<Id>,
        page: PageRequest,
    ) -> RepoResult<Page<PostRecord>>;

    // --- comments ---

    /// Creates the comment and adds one to the post's `comment_count`.
    async fn create_comment(&self, new: NewComment) -> RepoResult<Comment>;
    async fn comment_by_id(&self, id: Id) -> RepoResult<Option<Comment>>;
    /// Deletes the comment and takes one from the post's `comment_count`. `false` if absent.
    async fn delete_comment(&self, id: Id) -> RepoResult<bool>;
    /// A post's comments, oldest first by `(created_at, id)`.
    async fn comments_of_post(&self, post_id: Id, page: PageRequest) -> RepoResult<Page<Comment>>;
    /// Up to `per_post` newest comments of each given post, newest first within a post.
    async fn latest_comments(&self, post_ids: &[Id], per_post: u32) -> RepoResult<Vec<Comment>>;

    // --- idempotency ---

    async fn idempotency_begin(&self, start: IdempotencyStart) -> RepoResult<IdempotencyBegin>;
    /// Stores the response of a started request so later ones replay it.
    async fn idempotency_complete(
        &self,
        user_id: Id,
        key: &str,
        status: u16,
        body: &str,
    ) -> RepoResult<()>;
    /// Forgets a started request that failed in a way that must not be replayed.
    async fn idempotency_abandon(&self, user_id: Id, key: &str) -> RepoResult<()>;
}

/// How many requests a key may make per minute (GCRA: the burst is the whole minute's worth).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
}

/// The outcome of one rate-limit check, with what the `RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is whole again.
    pub reset_secs: u64,
    /// When refused: seconds until one more request is allowed.
    pub retry_after_secs: u64,
}

/// Rate limiting by key. In-process by default; shared (Redis) when scaled out.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request for `key` against `quota` and says whether it may proceed.
    async fn check(&self, key: &str, quota: Quota) -> anyhow::Result<RateDecision>;
}

/// The current time; a port so tests and jobs can agree on "now".
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
