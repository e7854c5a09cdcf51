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

/// The token that replaces a rotated one, in the same family and for the same user.
#[derive(Clone, Debug)]
pub struct RefreshSuccessor {
    pub token_hash: String,
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
    /// Whether an account with this external identity was deleted (deletion remembers it).
    async fn external_identity_deleted(&self, issuer: &str, subject: &str) -> RepoResult<bool>;
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
    /// tokens, idempotency records, file rows), keeping other users' counters exact. `false`
    /// if absent. The files' bytes are not touched: `MediaRepo::delete_user_with_objects`
    /// also enqueues their erasure.
    async fn delete_user(&self, id: Id) -> RepoResult<bool>;

    // --- refresh tokens ---

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> RepoResult<()>;
    /// Marks the token used if it is live (not used, not revoked, not expired at `now`).
    /// An expired unused token is `Unknown`.
    async fn use_refresh_token(&self, token_hash: &str, now: Timestamp) -> RepoResult<RefreshUse>;
    /// Rotation, in one transaction: marks the token used if it is live (as
    /// `use_refresh_token`) and, if its family has no revoked token, stores `successor` in
    /// the family (created at `now`). A revoked family makes it `Reused` and changes nothing.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: RefreshSuccessor,
        now: Timestamp,
    ) -> RepoResult<RefreshUse>;
    /// Revokes every token of the family, also one a rotation adds meanwhile.
    async fn revoke_refresh_family(&self, family_id: Id) -> RepoResult<()>;
    /// The family a token belongs to, if the token exists (used or not).
    async fn refresh_family_of(&self, token_hash: &str) -> RepoResult<Option<Id>>;

    // --- posts ---

    /// Creates the post; a `published` post adds one to its author's `posts_count`.
    async fn create_post(&self, new: NewPost) -> RepoResult<PostRecord>;
    /// The post with `liked_by_me` computed for `viewer`, whatever its status.
    async fn post_by_id(&self, id: Id, viewer: Option<Id>) -> RepoResult<Option<PostRecord>>;
    /// The published posts among `ids`, in no particular order, without a viewer
    /// (`liked_by_me` false); the others are left out.
    async fn published_posts(&self, ids: &[Id]) -> RepoResult<Vec<PostRecord>>;
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

// ---------------------------------------------------------------------------------------
// Files and uploads
// ---------------------------------------------------------------------------------------

/// A file to create, with its upload window.
#[derive(Clone, Debug)]
pub struct NewFile {
    pub id: Id,
    pub owner_id: Id,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub declared_sha256: Option<String>,
    pub declared_md5: Option<String>,
    pub visibility: shutter_core::domain::Visibility,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub upload_expires_at: Timestamp,
}

/// The tier's limits that creating files is checked against, in the same transaction.
#[derive(Clone, Copy, Debug)]
pub struct UploadAllowance {
    /// How many files may wait for bytes (`pending` or `uploading`) at once.
    pub max_open_uploads: u64,
    /// Bytes the owner may store: every file that is not `failed` counts, pending ones with
    /// their declared size.
    pub storage_quota: u64,
}

/// Why files were not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowanceRefusal {
    /// `open` uploads would be open with the new files.
    TooManyUploads { open: u64 },
    /// `used` bytes would be stored with the new files.
    QuotaExceeded { used: u64 },
}

/// The owner's current usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes_stored: u64,
    pub uploads_open: u64,
}

/// Filters of a file listing; all must hold.
#[derive(Clone, Debug, Default)]
pub struct FileFilter {
    pub visibility: Option<shutter_core::domain::Visibility>,
    pub tag: Option<String>,
    /// An exact type (`image/png`) or a prefix form (`image/*`).
    pub content_type: Option<String>,
    pub status: Option<shutter_core::domain::FileStatus>,
    /// Exclusive bounds on `created_at`.
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// Changes to a file's metadata; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct FileChange {
    pub filename: Option<String>,
    pub visibility: Option<shutter_core::domain::Visibility>,
    pub tags: Option<Vec<String>>,
}

/// What a completed upload established about the bytes.
#[derive(Clone, Debug)]
pub struct UploadResult {
    pub sha256: String,
    pub md5: String,
    /// `Ready`, or `Processing` when a pipeline step follows.
    pub status: shutter_core::domain::FileStatus,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// File metadata storage. Every method is one transaction.
#[async_trait]
pub trait FileRepo: Send + Sync + 'static {
    /// Creates all the files or none: refused when, with them, the owner's open uploads or
    /// stored bytes would go over the allowance. Serialised per owner, so two racing
    /// requests cannot both squeeze under a limit.
    async fn create_files(
        &self,
        owner_id: Id,
        files: Vec<NewFile>,
        allowance: UploadAllowance,
    ) -> RepoResult<Result<Vec<shutter_core::model::FileRecord>, AllowanceRefusal>>;
    async fn file_by_id(&self, id: Id) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// The owner's files, newest first by `(created_at, id)`.
    async fn files_of_owner(
        &self,
        owner_id: Id,
        filter: FileFilter,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::FileRecord>>;
    async fn update_file(
        &self,
        id: Id,
        change: FileChange,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// Deletes the file's row; `false` if absent; `RepoError::Conflict("file_in_use")` if a
    /// post uses it. (Its bytes are removed by the caller or the sweeper;
    /// `MediaRepo::delete_file_unless_used` also enqueues their erasure.)
    async fn delete_file(&self, id: Id) -> RepoResult<bool>;
    /// Moves a file from `pending` (or `uploading`, for a resumed upload) to `uploading`.
    /// `false` when it is in another state: the caller answers `conflict`.
    async fn begin_upload(&self, id: Id, now: Timestamp) -> RepoResult<bool>;
    /// Records how many bytes have arrived (only while `uploading`).
    async fn record_progress(&self, id: Id, bytes_received: u64, now: Timestamp) -> RepoResult<()>;
    /// An interrupted upload goes back to `pending` with `bytes_received` as given, so it
    /// can be retried (PUT: 0) or resumed (tus: the durable offset).
    async fn pause_upload(&self, id: Id, bytes_received: u64, now: Timestamp) -> RepoResult<()>;
    /// Marks the upload complete (from `uploading` only); the updated file, or `None` if the
    /// file is gone or was not uploading.
    async fn complete_upload(
        &self,
        id: Id,
        result: UploadResult,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// The sweeper's expiry: marks the upload `failed` with `failure` only if it is still
    /// waiting for bytes (`pending` or `uploading`) and its window closed before `now` — an
    /// upload that completed in the meantime is left alone. The failed file if this call
    /// won, `None` otherwise.
    async fn expire_upload(
        &self,
        id: Id,
        failure: shutter_core::model::Failure,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// Recovery of an upload whose writer died: back to `pending` at `bytes_received`, only
    /// if it is still `uploading` and its row has not changed since `updated_before` (a
    /// writer that recorded progress in the meantime is alive). Whether this call won.
    async fn recover_stalled_upload(
        &self,
        id: Id,
        bytes_received: u64,
        updated_before: Timestamp,
        now: Timestamp,
    ) -> RepoResult<bool>;
    /// Marks the file `failed` with a code and detail; the updated file, or `None` if absent.
    async fn fail_file(
        &self,
        id: Id,
        failure: shutter_core::model::Failure,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// Up to `limit` files still waiting for bytes whose upload window closed before `now`.
    async fn expired_uploads(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Id>>;
    /// Up to `limit` files `uploading` whose row has not changed since `updated_before`: a
    /// writer that records progress every 100 ms has stopped (its process died).
    async fn stalled_uploads(&self, updated_before: Timestamp, limit: u32) -> RepoResult<Vec<Id>>;
    /// Which of the given ids still have a row.
    async fn existing_file_ids(&self, ids: &[Id]) -> RepoResult<Vec<Id>>;
    async fn usage(&self, owner_id: Id) -> RepoResult<Usage>;
}

/// A failure of a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such object")]
    NotFound,
    #[error("blob store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("blob store error")]
    Other(#[source] anyhow::Error),
}

pub type BlobResult<T> = Result<T, BlobError>;

/// A chunked byte stream.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// An object being read: its bytes (the requested range) and the object's full length.
pub struct BlobRead {
    pub stream: ByteStream,
    pub total_len: u64,
}

/// An upload's bytes as they arrive: appended to a partial object that only becomes the
/// object when committed. Dropping a writer without `sync` may lose unsynced bytes, never
/// corrupt synced ones.
#[async_trait]
pub trait PartialWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> BlobResult<()>;
    /// Makes everything written so far durable; returns the partial object's length.
    async fn sync(&mut self) -> BlobResult<u64>;
}

/// Where a client sends an upload's bytes itself, straight to the store (a presigned `PUT`,
/// or the parts of a multipart upload), instead of through Shutter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectUpload {
    /// The presigned `PUT` URL of the whole object.
    pub url: String,
    /// Headers the client must send with the bytes (they are signed).
    pub headers: Vec<(String, String)>,
    /// For large files: a multipart upload, created now, with one presigned URL per part.
    pub multipart: Option<DirectMultipart>,
}

/// A multipart upload a client fills part by part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectMultipart {
    /// Every part but the last has exactly this many bytes.
    pub part_size: u64,
    /// `(number, presigned PUT URL)`, numbered from 1.
    pub parts: Vec<(u32, String)>,
}

/// Object storage addressed by key (`files/<id>`, `files/<id>/<variant>`).
///
/// The store also decides how bytes travel: a store that takes uploads and serves downloads
/// itself (S3) answers [`BlobStore::direct_upload`] and [`BlobStore::presigned_get`]; the
/// defaults (`None`) mean the bytes go through Shutter, which streams them with the partial
/// object methods and [`BlobStore::get`].
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A target for the client to upload `files/<id>`'s `size` bytes of `content_type` to
    /// directly, valid for `ttl`; a multipart upload when `size` is at least
    /// `multipart_threshold`. `None`: the bytes go through Shutter.
    /// Whether [`BlobStore::direct_upload`] gives targets (then `complete` checks uploads).
    fn takes_direct_uploads(&self) -> bool {
        false
    }

    async fn direct_upload(
        &self,
        _key: &str,
        _size: u64,
        _content_type: &str,
        _ttl: std::time::Duration,
        _multipart_threshold: u64,
    ) -> BlobResult<Option<DirectUpload>> {
        Ok(None)
    }

    /// Makes the bytes a client sent to its [`DirectUpload`] the key's partial object
    /// (completing the multipart upload with `parts`, `(number, etag)`, or with the parts
    /// the store lists when `None`), so that they are checked and committed like bytes that
    /// came through Shutter. The direct target's own copy goes: what is checked can no
    /// longer be replaced through a URL that is still valid. `NotFound`: no (complete) bytes
    /// have arrived.
    async fn take_direct_upload(
        &self,
        _key: &str,
        _parts: Option<Vec<(u32, String)>>,
    ) -> BlobResult<()> {
        Err(BlobError::NotFound)
    }

    /// How many bytes of a direct upload have arrived so far (the parts a multipart upload
    /// lists), if the store can tell.
    async fn direct_upload_progress(&self, _key: &str) -> BlobResult<Option<u64>> {
        Ok(None)
    }

    /// A URL that serves the object straight from the store for `ttl`, with these
    /// `Content-Type` and `Content-Disposition`; `None`: Shutter serves it.
    fn presigned_get(
        &self,
        _key: &str,
        _ttl: std::time::Duration,
        _content_type: &str,
        _content_disposition: &str,
    ) -> Option<String> {
        None
    }

    /// Opens the key's partial object for appending at `offset`, creating it when `offset` is
    /// 0; bytes past `offset` (written but not acknowledged before a crash) are cut off.
    /// `NotFound` when `offset` > 0 and the partial object is shorter than `offset`.
    async fn open_partial(&self, key: &str, offset: u64) -> BlobResult<Box<dyn PartialWriter>>;
    /// The partial object's current length, if it exists.
    async fn partial_len(&self, key: &str) -> BlobResult<Option<u64>>;
    /// Reads the partial object (for hashing a resumed upload and sniffing its content).
    async fn read_partial(&self, key: &str) -> BlobResult<BlobRead>;
    /// Makes the partial object the object, durably (fsync, rename, fsync the directory).
    async fn commit_partial(&self, key: &str) -> BlobResult<()>;
    /// Removes the partial object if there is one.
    async fn discard_partial(&self, key: &str) -> BlobResult<()>;
    /// Stores a whole object (small ones: variants).
    async fn put(&self, key: &str, bytes: bytes::Bytes) -> BlobResult<()>;
    /// Reads `range` (inclusive start, exclusive end) or all of an object.
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> BlobResult<BlobRead>;
    /// Removes the object and every object under `key/`; absent ones are fine.
    async fn delete(&self, key: &str) -> BlobResult<()>;
    /// Every file id with an object or partial object, and when it was last written, for the
    /// sweeper to find objects without rows.
    async fn list_file_ids(&self) -> BlobResult<Vec<(Id, Timestamp)>>;
    /// Answers when the store is usable (readiness).
    async fn ping(&self) -> BlobResult<()>;
}

/// The kinds of live events a user receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    FileProgress,
    FileProcessing,
    FileReady,
    FileFailed,
    PostPublished,
    PostFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::FileProgress => "file.progress",
            EventKind::FileProcessing => "file.processing",
            EventKind::FileReady => "file.ready",
            EventKind::FileFailed => "file.failed",
            EventKind::PostPublished => "post.published",
            EventKind::PostFailed => "post.failed",
        }
    }
}

/// One event for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub user_id: Id,
    pub kind: EventKind,
    pub file_id: Option<Id>,
    pub post_id: Option<Id>,
    pub bytes_received: Option<u64>,
    pub size: Option<u64>,
    pub failure: Option<shutter_core::model::Failure>,
    pub at: Timestamp,
}

/// A stream of one user's events.
pub type EventStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = Event> + Send>>;

/// Live events, delivered to the user they belong to. In-process by default; across nodes
/// through PostgreSQL or Redis when scaled out. Delivery is best effort: a subscriber that
/// falls behind loses events rather than slowing the publisher.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, event: Event);
    /// The events of `user_id` published from now on.
    async fn subscribe(&self, user_id: Id) -> EventStream;
}

/// Locks that keep one writer per upload across the nodes of a deployment: PostgreSQL
/// advisory locks on a connection of each node's own, so a node that dies gives its locks
/// back with its connection, at once. With one node (SQLite) there is none: the in-process
/// guard is enough.
#[async_trait]
pub trait WriterLocks: Send + Sync + 'static {
    /// Takes `id`'s lock for this node; `false` when another node holds it.
    async fn try_lock(&self, id: Id) -> RepoResult<bool>;
    /// Gives back a lock [`WriterLocks::try_lock`] took.
    async fn unlock(&self, id: Id);
}

/// A backend a node can run without, degraded (Redis): readiness reports it, but its
/// failure does not make the node unready.
#[async_trait]
pub trait OptionalBackend: Send + Sync + 'static {
    /// Answers when the backend does.
    async fn ping(&self) -> anyhow::Result<()>;
}

/// Messages sent to every node of a deployment (PostgreSQL `NOTIFY`, Redis pub/sub), which
/// carry live events from the node where they happen to the node holding the stream (see
/// [`crate::relay`]).
#[async_trait]
pub trait EventRelay: Send + Sync + 'static {
    /// Sends one message (at most 8000 bytes) to every node listening; this one may hear it
    /// too.
    async fn send(&self, message: &str) -> anyhow::Result<()>;
    /// The messages sent from now on by any node, until the connection is lost (the stream
    /// then ends; listen again).
    async fn listen(&self) -> anyhow::Result<RelayStream>;
}

/// Messages heard on an [`EventRelay`].
pub type RelayStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = String> + Send>>;

// ---------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------

/// A job to run in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub id: Id,
    /// What to do, e.g. `process_file`, `delete_objects`, `fanout_post`.
    pub kind: String,
    /// JSON arguments of the job.
    pub payload: String,
    /// Higher runs first (premium users' jobs before basic ones).
    pub priority: i32,
    /// Not before this instant.
    pub run_at: Timestamp,
    /// After this many failed attempts the job is dead-lettered.
    pub max_attempts: u32,
    pub created_at: Timestamp,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "queued" => Some(JobStatus::Queued),
            "running" => Some(JobStatus::Running),
            "done" => Some(JobStatus::Done),
            "dead" => Some(JobStatus::Dead),
            _ => None,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: Id,
    pub kind: String,
    pub payload: String,
    pub priority: i32,
    pub status: JobStatus,
    /// Attempts started so far, including the current one of a running job.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: Timestamp,
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// Queued again for `run_at`.
    Retrying,
    /// Out of attempts: dead-lettered.
    Dead,
    /// The worker no longer held the lease (it expired and another worker took the job):
    /// nothing was changed.
    LeaseLost,
}

/// Queue health for metrics: counts by status and how long the oldest due job has waited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: u64,
    pub running: u64,
    pub dead: u64,
    /// Milliseconds the oldest job that is due (`run_at <= now`) has been waiting.
    pub oldest_due_ms: u64,
}

/// A durable job queue in the metadata database. A job is claimed with a lease; a worker that
/// crashes loses it when the lease expires and another worker takes the job again, so every
/// handler must be idempotent.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    async fn enqueue(&self, job: NewJob) -> RepoResult<()>;
    /// Claims the next due job in one statement: queued with `run_at <= now`, or running with
    /// an expired lease; highest priority first, then oldest `run_at`, then id. Marks it
    /// running, locked by `worker` until `now + lease_ms`, and counts an attempt. Of several
    /// workers claiming at once each gets a different job.
    async fn claim(&self, worker: &str, now: Timestamp, lease_ms: i64) -> RepoResult<Option<Job>>;
    /// Pushes the lease of a job the worker still holds; `false` if it lost it.
    async fn extend_lease(&self, id: Id, worker: &str, until: Timestamp) -> RepoResult<bool>;
    /// Marks a job the worker holds done; `false` if it lost the lease.
    async fn complete(&self, id: Id, worker: &str, now: Timestamp) -> RepoResult<bool>;
    /// Records a failed attempt of a job the worker holds: queued again at `retry_at` while
    /// attempts remain, else dead.
    async fn fail(
        &self,
        id: Id,
        worker: &str,
        error: &str,
        retry_at: Timestamp,
        now: Timestamp,
    ) -> RepoResult<JobFailure>;
    /// Jobs by status (all when `None`), newest first, at most `limit`.
    async fn list_jobs(&self, status: Option<JobStatus>, limit: u32) -> RepoResult<Vec<Job>>;
    /// Queues dead jobs again with fresh attempts: the one given, or all. How many.
    async fn retry_dead(&self, id: Option<Id>, now: Timestamp) -> RepoResult<u64>;
    async fn stats(&self, now: Timestamp) -> RepoResult<QueueStats>;
    /// Deletes done jobs finished before `before`; how many.
    async fn prune_done(&self, before: Timestamp) -> RepoResult<u64>;
}

// ---------------------------------------------------------------------------------------
// Photos: processing, posts with media, deletion that cascades
// ---------------------------------------------------------------------------------------

/// Job kinds, shared by the code that enqueues them and the workers that run them.
pub mod job_kinds {
    /// `{"file_id": "…"}`: decode, make variants and blurhash, mark the file ready.
    pub const PROCESS_FILE: &str = "process_file";
    /// `{"file_ids": ["…"]}`: delete the stored bytes of files whose rows are gone.
    pub const DELETE_OBJECTS: &str = "delete_objects";
    /// `{"post_id": "…", "after": "…"|null}`: push a published post into followers' feeds, a
    /// batch at a time (each job enqueues the next batch).
    pub const FANOUT_POST: &str = "fanout_post";
}

/// Default attempts before a job is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// The `delete_objects` job that erases the bytes of `file_ids`.
pub fn delete_objects_job(file_ids: &[Id], now: Timestamp) -> NewJob {
    let ids: Vec<String> = file_ids.iter().map(Id::to_string).collect();
    NewJob {
        id: Id::new(),
        kind: job_kinds::DELETE_OBJECTS.to_owned(),
        payload: serde_json::json!({ "file_ids": ids }).to_string(),
        priority: 0,
        run_at: now,
        max_attempts: 20,
        created_at: now,
    }
}

/// The `process_file` job of a file; premium owners' files first.
pub fn process_file_job(file_id: Id, priority: i32, now: Timestamp) -> NewJob {
    NewJob {
        id: Id::new(),
        kind: job_kinds::PROCESS_FILE.to_owned(),
        payload: serde_json::json!({ "file_id": file_id.to_string() }).to_string(),
        priority,
        run_at: now,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        created_at: now,
    }
}

/// One stored variant of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantInfo {
    /// `thumb`, `w640` or `w1080`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

/// A photo of a post, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostMedia {
    pub post_id: Id,
    pub position: u32,
    pub file: shutter_core::model::FileRecord,
    pub variants: Vec<VariantInfo>,
}

/// Why a post with photos was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostMediaRefusal {
    Allowance(AllowanceRefusal),
    /// An attached file is not the author's ready image, or belongs to another post.
    FileUnavailable(Id),
}

/// What publishing a pending post found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Every photo is ready: the post is now published (and counted in `posts_count`).
    Published(shutter_core::model::PostRecord),
    /// Some photos are not ready (still uploading or processing, or failed: the caller fails
    /// the post for those).
    StillPending,
    /// The post is not pending (already published or failed, or gone): nothing changed.
    NotPending,
}

/// Storage for photos: processing results, posts with media, and deletes that enqueue the
/// erasure of stored bytes in the same transaction (`delete_objects` jobs).
#[async_trait]
pub trait MediaRepo: Send + Sync + 'static {
    /// Completes an upload into `processing` and enqueues `job` (its `process_file`) in the
    /// same transaction. `None` if the file is gone or was not `uploading`.
    async fn complete_upload_for_processing(
        &self,
        id: Id,
        result: UploadResult,
        job: NewJob,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// `processing` → `ready` with the displayed size, blurhash and variants. `None` if the
    /// file is gone or not processing (a repeated job).
    async fn finish_processing(
        &self,
        id: Id,
        width: u32,
        height: u32,
        blurhash: String,
        variants: Vec<VariantInfo>,
        now: Timestamp,
    ) -> RepoResult<Option<shutter_core::model::FileRecord>>;
    /// The variants of each given file.
    async fn variants_of(&self, file_ids: &[Id]) -> RepoResult<Vec<(Id, VariantInfo)>>;
    /// Creates the post (status `pending` when it has photos, else `published`), the new files
    /// (checked against `allowance` like `FileRepo::create_files`) and the post's media — new
    /// files first in the order given, then `attach` in the order given — all or nothing.
    /// Attached files must be the author's, `ready`, processable images, on no other post.
    async fn create_post_with_media(
        &self,
        post: NewPost,
        new_files: Vec<NewFile>,
        attach: Vec<Id>,
        allowance: UploadAllowance,
    ) -> RepoResult<
        Result<
            (
                shutter_core::model::PostRecord,
                Vec<shutter_core::model::FileRecord>,
            ),
            PostMediaRefusal,
        >,
    >;
    /// The media of each given post, by post then position.
    async fn media_of_posts(&self, post_ids: &[Id]) -> RepoResult<Vec<PostMedia>>;
    /// The post a file belongs to, if any.
    async fn post_of_file(&self, file_id: Id) -> RepoResult<Option<Id>>;
    /// Publishes a pending post whose photos are all `ready`, atomically (of two racing
    /// calls one publishes).
    async fn publish_post_if_ready(
        &self,
        post_id: Id,
        now: Timestamp,
    ) -> RepoResult<PublishOutcome>;
    /// A pending post becomes `failed`; `false` if it was not pending.
    async fn fail_post(&self, post_id: Id, now: Timestamp) -> RepoResult<bool>;
    /// Deletes a post with its media files and enqueues `delete_objects` for their bytes.
    /// `false` if absent.
    async fn delete_post_with_media(&self, id: Id, now: Timestamp) -> RepoResult<bool>;
    /// Deletes a file that no post uses and enqueues `delete_objects` for its bytes.
    async fn delete_file_unless_used(&self, id: Id, now: Timestamp) -> RepoResult<FileDeletion>;
    /// Deletes the user like `Repo::delete_user` and enqueues `delete_objects` for all
    /// their files' bytes in the same transaction.
    async fn delete_user_with_objects(&self, id: Id, now: Timestamp) -> RepoResult<bool>;
}

/// What deleting a file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileDeletion {
    Deleted,
    /// A post uses it: `conflict`.
    InUse,
    Missing,
}

// ---------------------------------------------------------------------------------------
// Social graph, likes and feeds
// ---------------------------------------------------------------------------------------

/// One step of fanning a post out into followers' feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutStep {
    /// Entries were written for a batch of followers; continue after `last_follower`.
    More { last_follower: Id, rows: u64 },
    /// The last batch was written (`rows` in it) and the post is marked fanned out.
    Done { rows: u64 },
    /// Nothing to do: the post is gone, not published, already fanned out, or its author
    /// has `threshold` followers or more (their posts are pulled at read time instead).
    Skipped,
}

/// A post of a home feed page before the post itself is read: its key and whether the
/// reader likes it (see [`SocialRepo::feed_keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedKey {
    pub id: Id,
    pub created_at: Timestamp,
    pub liked_by_me: bool,
}

impl FeedKey {
    pub fn cursor(&self) -> shutter_core::Cursor {
        shutter_core::Cursor::new(self.created_at, self.id)
    }
}

/// Follows, likes and feeds.
///
/// The home feed is hybrid: a post is *pushed* (copied into `feed_entries` of each follower)
/// by `fanout_post` jobs when its author has fewer followers than the threshold, and is
/// marked fanned out when done. A feed page merges, under one `(created_at, id)` keyset, the
/// reader's entries, the reader's own posts, and the published posts of followed authors
/// that are not fanned out (big accounts, and posts whose fan-out has not finished). So a
/// post shows at once, never twice, and crossing the threshold in either direction needs no
/// repair.
#[async_trait]
pub trait SocialRepo: Send + Sync + 'static {
    /// Follows `followee`; idempotent (`false` if already following). Counters exact; the
    /// follower's feed gets entries for the followee's `backfill` newest fanned-out
    /// published posts. `Conflict("missing_reference")` if either user is absent.
    async fn follow(
        &self,
        follower: Id,
        followee: Id,
        now: Timestamp,
        backfill: u32,
    ) -> RepoResult<bool>;
    /// Unfollows; idempotent. Removes the followee's entries from the follower's feed.
    async fn unfollow(&self, follower: Id, followee: Id) -> RepoResult<bool>;
    /// Who follows `user`, newest follow first.
    async fn followers(
        &self,
        user: Id,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::UserSummary>>;
    /// Whom `user` follows, newest follow first.
    async fn following(
        &self,
        user: Id,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::UserSummary>>;
    /// Likes a post; idempotent (`false` if already liked). Does not touch `like_count`: the
    /// counter is brought up to date by `recount_likes`, so a like storm on one post does
    /// not queue every request on that post's row.
    async fn like(&self, post: Id, user: Id, now: Timestamp) -> RepoResult<bool>;
    async fn unlike(&self, post: Id, user: Id) -> RepoResult<bool>;
    /// Who liked a post, newest like first.
    async fn likers(
        &self,
        post: Id,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::UserSummary>>;
    /// Sets each post's `like_count` to its number of likes.
    async fn recount_likes(&self, posts: &[Id]) -> RepoResult<()>;
    /// A page of `user`'s home feed (see the trait's doc), newest first, with `liked_by_me`
    /// for `user`.
    async fn feed(
        &self,
        user: Id,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::PostRecord>>;
    /// The same page as [`Self::feed`], as keys with the reader's likes: for a reader that
    /// holds the posts themselves (the cache of published posts).
    async fn feed_keys(&self, user: Id, page: PageRequest) -> RepoResult<Page<FeedKey>>;
    /// Which of `posts` the user likes, in no particular order.
    async fn liked_among(&self, user: Id, posts: &[Id]) -> RepoResult<Vec<Id>>;
    /// Recent published posts of everyone, newest first.
    async fn explore(
        &self,
        viewer: Option<Id>,
        page: PageRequest,
    ) -> RepoResult<Page<shutter_core::model::PostRecord>>;
    /// Writes feed entries of `post` for up to `batch` followers after `after` (by follower
    /// id), if the author has fewer than `threshold` followers; marks the post fanned out
    /// with the last batch.
    async fn fanout_batch(
        &self,
        post: Id,
        after: Option<Id>,
        batch: u32,
        threshold: u64,
    ) -> RepoResult<FanoutStep>;
}
