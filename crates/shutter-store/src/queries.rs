//! Every SQL statement of the [`Repo`](shutter_app::ports::Repo),
//! [`FileRepo`](shutter_app::ports::FileRepo), [`JobQueue`](shutter_app::ports::JobQueue) and
//! [`MediaRepo`](shutter_app::ports::MediaRepo) adapters, written once.
//!
//! The text uses `?` placeholders and only SQL that SQLite and PostgreSQL both understand
//! (`RETURNING`, `ON CONFLICT … DO UPDATE … WHERE`, window functions, `EXISTS`); the PostgreSQL
//! adapter rewrites the placeholders to `$1..$n` (see [`crate::dialect`]). Statements that
//! really differ between the dialects live with their adapter in [`crate::repo`].
//!
//! Keyset conditions are spelled `created_at < ? OR (created_at = ? AND id < ?)` rather than
//! as row values, and are preceded by a plain `created_at <= ?` so both planners can turn
//! them into an index range scan. `before_cursor!` writes that text for a table alias, so
//! every newest-first listing binds its cursor the same way (`crate::repo::bind_page`).

/// The keyset condition "strictly before the cursor, newest first" on `alias`: the cursor's
/// time three times (see `CURSOR_TIME_BINDS`), then its id.
macro_rules! before_cursor {
    ($alias:literal) => {
        concat!(
            " AND ",
            $alias,
            ".created_at <= ? AND (",
            $alias,
            ".created_at < ? OR (",
            $alias,
            ".created_at = ? AND ",
            $alias,
            ".id < ?))"
        )
    };
}

/// The same keyset condition on any `(time, id)` column pair, for listings whose key is not
/// the listed row's own `created_at` and `id` (a follow's time and the other user's id, a
/// feed entry's post).
macro_rules! before_key {
    ($time:literal, $id:literal) => {
        concat!(
            " AND ",
            $time,
            " <= ? AND (",
            $time,
            " < ? OR (",
            $time,
            " = ? AND ",
            $id,
            " < ?))"
        )
    };
}

/// Every column of a file (alias `f`) that a `FileRecord` is read from, for the inner
/// query of [`FILE_ROWS_HEAD`] and [`MEDIA_ROWS_HEAD`].
macro_rules! file_columns {
    () => {
        "f.id, f.owner_id, f.filename, f.content_type, f.size, f.declared_sha256, \
         f.declared_md5, f.sha256, f.md5, f.visibility, f.status, f.bytes_received, \
         f.failure_code, f.failure_detail, f.width, f.height, f.blurhash, \
         f.upload_expires_at, f.created_at, f.updated_at"
    };
}

// --- users ---

pub const USER_COLUMNS: &str = "SELECT id, username, display_name, bio, tier, role, created_at, \
     followers_count, following_count, posts_count FROM users";

pub const INSERT_USER: &str = "INSERT INTO users \
     (id, username, display_name, password_hash, ext_issuer, ext_subject, tier, role, created_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

pub const WHERE_ID: &str = " WHERE id = ?";
pub const WHERE_USERNAME: &str = " WHERE username = ?";
pub const WHERE_EXTERNAL: &str = " WHERE ext_issuer = ? AND ext_subject = ?";

pub const PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE id = ?";

pub const UPDATE_PROFILE: &str = "UPDATE users SET display_name = COALESCE(?, display_name), \
     bio = COALESCE(?, bio) WHERE id = ?";
pub const SET_TIER: &str = "UPDATE users SET tier = ? WHERE id = ?";
pub const SET_ROLE: &str = "UPDATE users SET role = ? WHERE id = ?";

/// Before a user's rows cascade away, the counters they feed on other users' rows are taken
/// down by exactly what is about to disappear. The user's own posts (and everything on
/// them) vanish whole, so only other authors' posts and other users' follow counts change.
pub const DELETE_USER_UNCOMMENT: &str = "UPDATE posts SET comment_count = comment_count - \
     (SELECT COUNT(*) FROM comments c WHERE c.post_id = posts.id AND c.author_id = ?) \
     WHERE author_id <> ? AND id IN (SELECT post_id FROM comments WHERE author_id = ?)";
/// `like_count` lags the likes (see [`RECOUNT_LIKES`]), so it is recounted without the
/// user's likes rather than decremented.
pub const DELETE_USER_UNLIKE: &str = "UPDATE posts SET like_count = \
     (SELECT COUNT(*) FROM likes l WHERE l.post_id = posts.id AND l.user_id <> ?) \
     WHERE author_id <> ? AND id IN (SELECT post_id FROM likes WHERE user_id = ?)";
pub const DELETE_USER_UNFOLLOW: &str = "UPDATE users SET followers_count = followers_count - 1 \
     WHERE id <> ? AND id IN (SELECT followee_id FROM follows WHERE follower_id = ?)";
pub const DELETE_USER_UNFOLLOWED: &str = "UPDATE users SET following_count = following_count - 1 \
     WHERE id <> ? AND id IN (SELECT follower_id FROM follows WHERE followee_id = ?)";
/// The links between the user's posts and files go first. They would cascade with the posts,
/// but a link also refers to its file without cascading, and whether that reference is
/// checked before or after the posts' cascade has run is the database's business; removed
/// here, it never comes up. (A post's photos are its author's files, so the second condition
/// only guards the schema's promise.)
pub const DELETE_USER_UNLINK_MEDIA: &str = "DELETE FROM post_media \
     WHERE post_id IN (SELECT id FROM posts WHERE author_id = ?) \
     OR file_id IN (SELECT id FROM files WHERE owner_id = ?)";
/// Cascades (foreign keys `ON DELETE CASCADE`) remove posts, comments, likes, follows,
/// refresh tokens, idempotency records, and files with their tags and variants.
/// An external account's identity is remembered, so that its next token cannot recreate it.
pub const DELETE_USER_REMEMBER_EXTERNAL: &str = "INSERT INTO deleted_external_identities \
     (ext_issuer, ext_subject) SELECT ext_issuer, ext_subject FROM users \
     WHERE id = ? AND ext_issuer IS NOT NULL AND ext_subject IS NOT NULL ON CONFLICT DO NOTHING";
pub const DELETE_USER: &str = "DELETE FROM users WHERE id = ?";
pub const EXTERNAL_IDENTITY_DELETED: &str =
    "SELECT COUNT(*) AS n FROM deleted_external_identities \
     WHERE ext_issuer = ? AND ext_subject = ?";

// --- refresh tokens ---

pub const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens \
     (token_hash, family_id, user_id, created_at, expires_at, used_at, revoked) \
     VALUES (?, ?, ?, ?, ?, NULL, ?)";

/// One statement, so that of two racing presentations exactly one matches the
/// `used_at IS NULL` condition (PostgreSQL re-checks it after waiting for the row lock;
/// SQLite runs writers one at a time).
pub const USE_REFRESH_TOKEN: &str = "UPDATE refresh_tokens SET used_at = ? \
     WHERE token_hash = ? AND used_at IS NULL AND NOT revoked AND expires_at > ? \
     RETURNING user_id, family_id, expires_at";
pub const REFRESH_TOKEN_STATE: &str =
    "SELECT family_id, used_at, revoked FROM refresh_tokens WHERE token_hash = ?";
pub const REVOKE_REFRESH_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked = ? WHERE family_id = ? AND NOT revoked";
/// Whether any token of the family was revoked (the family is then dead).
pub const REFRESH_FAMILY_REVOKED: &str =
    "SELECT 1 AS revoked FROM refresh_tokens WHERE family_id = ? AND revoked LIMIT 1";
pub const REFRESH_FAMILY_OF: &str = "SELECT family_id FROM refresh_tokens WHERE token_hash = ?";

// --- posts ---

/// The first placeholder is the viewer (NULL for nobody, which matches no like).
pub const POST_COLUMNS: &str = "SELECT p.id, p.caption, p.status, p.like_count, \
     p.comment_count, p.created_at, p.updated_at, u.id AS author_id, \
     u.username AS author_username, u.display_name AS author_display_name, \
     EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = ?) AS liked_by_me \
     FROM posts p JOIN users u ON u.id = p.author_id";

pub const WHERE_POST_ID: &str = " WHERE p.id = ?";

pub const INSERT_POST: &str = "INSERT INTO posts \
     (id, author_id, caption, status, like_count, comment_count, created_at, updated_at) \
     VALUES (?, ?, ?, ?, 0, 0, ?, ?)";
pub const BUMP_POSTS_COUNT: &str = "UPDATE users SET posts_count = posts_count + ? WHERE id = ?";
pub const UPDATE_POST_CAPTION: &str =
    "UPDATE posts SET caption = ?, updated_at = ? WHERE id = ? RETURNING author_id";
/// Comments, likes and media links (not the media files) cascade with the post; the
/// counters of comments and likes live on the post itself.
/// A post's author never changes, so it may be read before the author is locked.
pub const POST_AUTHOR: &str = "SELECT author_id FROM posts WHERE id = ?";
pub const DELETE_POST: &str = "DELETE FROM posts WHERE id = ? RETURNING author_id, status";

/// The second placeholder is `include_unpublished` (a boolean).
pub const WHERE_POSTS_OF_AUTHOR: &str = " WHERE p.author_id = ? AND (? OR p.status = 'published')";
pub const POSTS_BEFORE_CURSOR: &str = before_cursor!("p");
pub const POSTS_NEWEST_FIRST: &str = " ORDER BY p.created_at DESC, p.id DESC LIMIT ?";

// --- comments ---

pub const COMMENT_COLUMNS: &str = "SELECT c.id, c.post_id, c.text, c.created_at, c.updated_at, \
     u.id AS author_id, u.username AS author_username, u.display_name AS author_display_name \
     FROM comments c JOIN users u ON u.id = c.author_id";

pub const WHERE_COMMENT_ID: &str = " WHERE c.id = ?";

pub const INSERT_COMMENT: &str = "INSERT INTO comments \
     (id, post_id, author_id, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)";
pub const BUMP_COMMENT_COUNT: &str =
    "UPDATE posts SET comment_count = comment_count + ? WHERE id = ?";
pub const DELETE_COMMENT: &str = "DELETE FROM comments WHERE id = ? RETURNING post_id";

pub const WHERE_COMMENTS_OF_POST: &str = " WHERE c.post_id = ?";
pub const COMMENTS_AFTER_CURSOR: &str = " AND c.created_at >= ? \
     AND (c.created_at > ? OR (c.created_at = ? AND c.id > ?))";
pub const COMMENTS_OLDEST_FIRST: &str = " ORDER BY c.created_at, c.id LIMIT ?";

/// Followed by `(?, ?, …)` with one placeholder per post, then [`LATEST_COMMENTS_TAIL`].
pub const LATEST_COMMENTS_HEAD: &str = "SELECT c.id, c.post_id, c.text, c.created_at, \
     c.updated_at, u.id AS author_id, u.username AS author_username, \
     u.display_name AS author_display_name \
     FROM (SELECT id, post_id, author_id, text, created_at, updated_at, \
     ROW_NUMBER() OVER (PARTITION BY post_id ORDER BY created_at DESC, id DESC) AS rn \
     FROM comments WHERE post_id IN ";
pub const LATEST_COMMENTS_TAIL: &str = ") c JOIN users u ON u.id = c.author_id \
     WHERE c.rn <= ? ORDER BY c.post_id, c.created_at DESC, c.id DESC";

// --- files ---

/// Every file read is one statement (one snapshot): the files wanted, selected, ordered and
/// limited in the inner query (which the caller completes after this head), joined to their
/// tags in [`FILE_ROWS_TAIL`]. A file comes as one row per tag (one row with a NULL tag when
/// it has none), newest file first, its tags in the order given.
pub const FILE_ROWS_HEAD: &str = concat!(
    "SELECT f.*, t.tag FROM (SELECT ",
    file_columns!(),
    " FROM files f"
);
pub const FILE_ROWS_TAIL: &str = ") f LEFT JOIN file_tags t ON t.file_id = f.id \
     ORDER BY f.created_at DESC, f.id DESC, t.position";

/// Followed by `(?, ?, …)` with one placeholder per file id.
pub const WHERE_FILE_ID_IN: &str = " WHERE f.id IN ";

pub const WHERE_FILES_OF_OWNER: &str = " WHERE f.owner_id = ?";
pub const FILES_WITH_VISIBILITY: &str = " AND f.visibility = ?";
pub const FILES_WITH_STATUS: &str = " AND f.status = ?";
pub const FILES_WITH_TAG: &str =
    " AND EXISTS (SELECT 1 FROM file_tags ft WHERE ft.file_id = f.id AND ft.tag = ?)";
pub const FILES_WITH_CONTENT_TYPE: &str = " AND f.content_type = ?";
/// `image/*`: the prefix goes in twice. Case-sensitive on both dialects, unlike `LIKE`
/// (which SQLite folds for ASCII), and free of `LIKE`'s wildcards in the prefix.
pub const FILES_WITH_CONTENT_TYPE_PREFIX: &str = " AND substr(f.content_type, 1, length(?)) = ?";
pub const FILES_CREATED_AFTER: &str = " AND f.created_at > ?";
pub const FILES_CREATED_BEFORE: &str = " AND f.created_at < ?";
pub const FILES_BEFORE_CURSOR: &str = before_cursor!("f");
pub const FILES_NEWEST_FIRST: &str = " ORDER BY f.created_at DESC, f.id DESC LIMIT ?";

pub const INSERT_FILE: &str = "INSERT INTO files \
     (id, owner_id, filename, content_type, size, declared_sha256, declared_md5, visibility, \
     status, bytes_received, upload_expires_at, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)";
pub const INSERT_FILE_TAG: &str = "INSERT INTO file_tags (file_id, tag, position) VALUES (?, ?, ?)";
pub const DELETE_FILE_TAGS: &str = "DELETE FROM file_tags WHERE file_id = ?";

/// Open uploads (`pending`, `uploading`) and stored bytes (every file not `failed`, pending
/// ones with their declared size). `SUM` of a BIGINT is NUMERIC on PostgreSQL, hence the casts.
pub const FILE_USAGE: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN status IN ('pending', 'uploading') THEN 1 ELSE 0 END), 0) \
     AS BIGINT) AS uploads_open, \
     CAST(COALESCE(SUM(CASE WHEN status <> 'failed' THEN size ELSE 0 END), 0) AS BIGINT) \
     AS bytes_stored \
     FROM files WHERE owner_id = ?";

pub const UPDATE_FILE: &str = "UPDATE files SET filename = COALESCE(?, filename), \
     visibility = COALESCE(?, visibility), updated_at = ? WHERE id = ?";
pub const DELETE_FILE: &str = "DELETE FROM files WHERE id = ?";

pub const BEGIN_UPLOAD: &str = "UPDATE files SET status = 'uploading', updated_at = ? \
     WHERE id = ? AND status IN ('pending', 'uploading')";
pub const RECORD_PROGRESS: &str = "UPDATE files SET bytes_received = ?, updated_at = ? \
     WHERE id = ? AND status = 'uploading'";
pub const PAUSE_UPLOAD: &str = "UPDATE files SET status = 'pending', bytes_received = ?, \
     updated_at = ? WHERE id = ? AND status = 'uploading'";
/// Every declared byte has arrived by now, whichever way the bytes came (the built-in store
/// records progress as it goes; a presigned S3 upload never does).
pub const COMPLETE_UPLOAD: &str = "UPDATE files SET status = ?, sha256 = ?, md5 = ?, \
     width = ?, height = ?, bytes_received = size, updated_at = ? \
     WHERE id = ? AND status = 'uploading'";
pub const FAIL_FILE: &str = "UPDATE files SET status = 'failed', failure_code = ?, \
     failure_detail = ?, updated_at = ? WHERE id = ?";
/// The sweeper's expiry: only an upload still waiting for bytes, past its window.
pub const EXPIRE_UPLOAD: &str = "UPDATE files SET status = 'failed', failure_code = ?, \
     failure_detail = ?, updated_at = ? \
     WHERE id = ? AND status IN ('pending', 'uploading') AND upload_expires_at < ?";
/// Recovery of a dead writer's upload: only if no progress was recorded since the check.
pub const RECOVER_STALLED_UPLOAD: &str = "UPDATE files SET status = 'pending', \
     bytes_received = ?, updated_at = ? \
     WHERE id = ? AND status = 'uploading' AND updated_at < ?";

/// Uploads still waiting for bytes past their window, longest expired first.
pub const EXPIRED_UPLOADS: &str = "SELECT id FROM files \
     WHERE status IN ('pending', 'uploading') AND upload_expires_at < ? \
     ORDER BY upload_expires_at, id LIMIT ?";
pub const STALLED_UPLOADS: &str = "SELECT id FROM files \
     WHERE status = 'uploading' AND updated_at < ? \
     ORDER BY updated_at, id LIMIT ?";
/// Followed by `(?, ?, …)` with one placeholder per file id.
pub const FILE_IDS_IN: &str = "SELECT id FROM files WHERE id IN ";

/// Every file a user owns, for the job that erases their bytes.
pub const FILE_IDS_OF_OWNER: &str = "SELECT id FROM files WHERE owner_id = ? ORDER BY id";
/// Whether a post uses the file. Run after the file's row is locked (see `FOR_UPDATE`).
pub const FILE_IN_USE: &str = "SELECT post_id FROM post_media WHERE file_id = ?";
/// Followed by the dialect's `FOR_UPDATE`: locks the file's row against a concurrent link
/// (which takes `FOR KEY SHARE` on it) or delete.
pub const LOCK_FILE: &str = "SELECT id FROM files WHERE id = ?";

// --- photos ---

pub const COMPLETE_PROCESSING: &str = "UPDATE files SET status = 'ready', width = ?, \
     height = ?, blurhash = ?, updated_at = ? WHERE id = ? AND status = 'processing'";
pub const DELETE_FILE_VARIANTS: &str = "DELETE FROM file_variants WHERE file_id = ?";
pub const INSERT_FILE_VARIANT: &str = "INSERT INTO file_variants \
     (file_id, name, width, height, size) VALUES (?, ?, ?, ?, ?)";
/// Followed by `(?, ?, …)` with one placeholder per file id, then [`VARIANTS_IN_ORDER`].
pub const VARIANTS_OF_FILES: &str =
    "SELECT file_id, name, width, height, size FROM file_variants WHERE file_id IN ";
/// Smallest first within a file.
pub const VARIANTS_IN_ORDER: &str = " ORDER BY file_id, width, height, name";

/// The attached files a new post wants, followed by `(?, ?, …)` with one placeholder per id,
/// then the dialect's `FOR_UPDATE` (so none is deleted, changes state or is linked elsewhere
/// before the post commits). `used` says whether some post already has the file.
pub const ATTACHABLE_FILES: &str = "SELECT f.id, f.owner_id, f.status, f.content_type, \
     EXISTS (SELECT 1 FROM post_media pm WHERE pm.file_id = f.id) AS used \
     FROM files f WHERE f.id IN ";
pub const INSERT_POST_MEDIA: &str =
    "INSERT INTO post_media (post_id, file_id, position) VALUES (?, ?, ?)";

/// A post's media with their files, one statement (one snapshot) like [`FILE_ROWS_HEAD`]:
/// followed by `(?, ?, …)` with one placeholder per post, then [`MEDIA_ROWS_TAIL`]. One row
/// per tag of each file (one with a NULL tag when it has none), by post, then position, then
/// tag position.
pub const MEDIA_ROWS_HEAD: &str = concat!(
    "SELECT f.*, t.tag FROM (SELECT pm.post_id, pm.position, ",
    file_columns!(),
    " FROM post_media pm JOIN files f ON f.id = pm.file_id WHERE pm.post_id IN "
);
pub const MEDIA_ROWS_TAIL: &str = ") f LEFT JOIN file_tags t ON t.file_id = f.id \
     ORDER BY f.post_id, f.position, t.position";

pub const POST_OF_FILE: &str = "SELECT post_id FROM post_media WHERE file_id = ?";

/// Followed by the dialect's `FOR_UPDATE`: the post that may be published, locked so that of
/// racing publishers the later ones find it published.
pub const PENDING_POST: &str = "SELECT status FROM posts WHERE id = ?";
/// How many of the post's photos are not `ready` yet.
pub const UNREADY_MEDIA: &str = "SELECT COUNT(*) AS unready FROM post_media pm \
     JOIN files f ON f.id = pm.file_id WHERE pm.post_id = ? AND f.status <> 'ready'";
/// Binds: the new status, now, the id.
pub const SETTLE_PENDING_POST: &str =
    "UPDATE posts SET status = ?, updated_at = ? WHERE id = ? AND status = 'pending'";
/// The post's links go first, handing back the files to delete with it.
pub const UNLINK_POST_MEDIA: &str =
    "DELETE FROM post_media WHERE post_id = ? RETURNING file_id, position";
/// Followed by `(?, ?, …)` with one placeholder per file id.
pub const DELETE_FILES_IN: &str = "DELETE FROM files WHERE id IN ";

// --- idempotency ---

/// Insert-if-absent that also takes over an expired record, or one abandoned in flight
/// (older than the stale instant): affects one row exactly when the caller may start. Under
/// PostgreSQL a concurrent insert waits for the first and then re-checks the `WHERE` against
/// the fresh row, which no longer qualifies, so only one caller starts.
pub const IDEMPOTENCY_CLAIM: &str = "INSERT INTO idempotency_keys \
     (user_id, key, request_hash, status, body, created_at) VALUES (?, ?, ?, NULL, NULL, ?) \
     ON CONFLICT (user_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
     status = NULL, body = NULL, created_at = excluded.created_at \
     WHERE idempotency_keys.created_at < ? \
     OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < ?)";
pub const IDEMPOTENCY_RECORD: &str =
    "SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = ? AND key = ?";
pub const IDEMPOTENCY_COMPLETE: &str =
    "UPDATE idempotency_keys SET status = ?, body = ? WHERE user_id = ? AND key = ?";
/// Only a record still in flight is forgotten; a completed one keeps replaying.
pub const IDEMPOTENCY_ABANDON: &str =
    "DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND status IS NULL";

// --- jobs ---

pub const JOB_COLUMNS: &str = "id, kind, payload, priority, status, attempts, max_attempts, \
     run_at, locked_by, locked_until, last_error, created_at, updated_at";

pub const INSERT_JOB: &str = "INSERT INTO jobs \
     (id, kind, payload, priority, status, attempts, max_attempts, run_at, locked_by, \
     locked_until, last_error, created_at, updated_at) \
     VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, NULL, NULL, NULL, ?, ?)";

/// The claim, one statement: the inner query picks the first due job in claim order, the
/// outer update leases it. The dialect's row lock goes between this and [`CLAIM_JOB_TAIL`]
/// (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent claims pass over each other's row
/// and, at READ COMMITTED, re-check a row that changed under them; SQLite runs writers one
/// at a time and needs none). `status IN ('queued', 'running')` repeats the condition of the
/// `jobs_claim` index word for word so both planners walk that index in order. Binds: the
/// worker, the lease's end, now (updated_at), now (due), now (lease expired).
pub const CLAIM_JOB_HEAD: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
     locked_by = ?, locked_until = ?, updated_at = ? \
     WHERE id = (SELECT id FROM jobs WHERE status IN ('queued', 'running') \
     AND ((status = 'queued' AND run_at <= ?) \
     OR (status = 'running' AND locked_until < ? AND attempts < max_attempts)) \
     ORDER BY priority DESC, run_at, id LIMIT 1";
/// Followed by [`JOB_COLUMNS`].
pub const CLAIM_JOB_TAIL: &str = ") RETURNING ";

/// A job whose lease ran out on its last attempt is dead-lettered rather than claimed again:
/// its worker never reported back (it crashed, perhaps because of the job), and without this
/// a job that kills its worker would be retried forever. Binds: now (updated_at), now.
pub const DEAD_LETTER_LOST_LEASES: &str = "UPDATE jobs SET status = 'dead', \
     last_error = 'the lease of ' || locked_by || ' expired on the last attempt', \
     locked_by = NULL, locked_until = NULL, updated_at = ? \
     WHERE status = 'running' AND locked_until < ? AND attempts >= max_attempts";

/// Only the worker holding the lease may extend it, complete or fail the job.
pub const EXTEND_JOB_LEASE: &str = "UPDATE jobs SET locked_until = ? \
     WHERE id = ? AND locked_by = ? AND status = 'running'";
pub const COMPLETE_JOB: &str = "UPDATE jobs SET status = 'done', locked_by = NULL, \
     locked_until = NULL, updated_at = ? WHERE id = ? AND locked_by = ? AND status = 'running'";
/// Every `SET` expression sees the row as it was, so both `CASE`s judge the same `attempts`
/// (which counts the failed attempt already: the claim counted it). Binds: retry_at, the
/// error, now, the id, the worker.
pub const FAIL_JOB: &str = "UPDATE jobs SET \
     status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
     run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE ? END, \
     last_error = ?, locked_by = NULL, locked_until = NULL, updated_at = ? \
     WHERE id = ? AND locked_by = ? AND status = 'running' RETURNING status";

/// Followed by [`JOB_COLUMNS`], then optionally [`JOBS_WITH_STATUS`], then
/// [`JOBS_NEWEST_FIRST`].
pub const SELECT_JOBS: &str = "SELECT ";
pub const FROM_JOBS: &str = " FROM jobs";
pub const JOBS_WITH_STATUS: &str = " WHERE status = ?";
pub const JOBS_NEWEST_FIRST: &str = " ORDER BY created_at DESC, id DESC LIMIT ?";

/// The last error is kept: it says why the job died before it was sent round again.
pub const RETRY_DEAD_JOBS: &str = "UPDATE jobs SET status = 'queued', attempts = 0, \
     run_at = ?, updated_at = ? WHERE status = 'dead'";
pub const AND_JOB_ID: &str = " AND id = ?";

/// One statement, one snapshot. Done jobs, the bulk of the table until pruned, are left out
/// by a condition the `jobs_status_created` index serves. `SUM` casts as in [`FILE_USAGE`].
pub const JOB_STATS: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS BIGINT) AS queued, \
     CAST(COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) AS BIGINT) \
     AS running, \
     CAST(COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS BIGINT) AS dead, \
     MIN(CASE WHEN status = 'queued' AND run_at <= ? THEN run_at END) AS oldest_due \
     FROM jobs WHERE status IN ('queued', 'running', 'dead')";

/// A done job's `updated_at` is when it finished.
pub const PRUNE_DONE_JOBS: &str = "DELETE FROM jobs WHERE status = 'done' AND updated_at < ?";

// --- follows, likes, feeds ---

/// Followed by the dialect's `LOCK_FOLLOWER` or `LOCK_FOLLOWEE`: the two users of a follow are
/// locked in id order, so `A → B` and `B → A` (or a follow and a fan-out) never wait on each
/// other in opposite orders.
pub const FOLLOW_PARTY: &str = "SELECT id FROM users WHERE id = ?";
pub const INSERT_FOLLOW: &str = "INSERT INTO follows (follower_id, followee_id, created_at) \
     VALUES (?, ?, ?) ON CONFLICT (follower_id, followee_id) DO NOTHING";
pub const DELETE_FOLLOW: &str = "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?";
/// Binds: +1 or -1, the user.
pub const BUMP_FOLLOWING_COUNT: &str =
    "UPDATE users SET following_count = following_count + ? WHERE id = ?";
pub const BUMP_FOLLOWERS_COUNT: &str =
    "UPDATE users SET followers_count = followers_count + ? WHERE id = ?";
/// A new follower gets entries for the followee's newest fanned-out posts (the others are
/// pulled at read time anyway). Binds: the follower, the followee, how many.
pub const BACKFILL_FEED: &str =
    "INSERT INTO feed_entries (user_id, post_id, author_id, created_at) \
     SELECT ?, p.id, p.author_id, p.created_at FROM posts p \
     WHERE p.author_id = ? AND p.status = 'published' AND p.fanned_out \
     ORDER BY p.created_at DESC, p.id DESC LIMIT ? \
     ON CONFLICT DO NOTHING";
pub const UNFEED_AUTHOR: &str = "DELETE FROM feed_entries WHERE user_id = ? AND author_id = ?";

/// A page of users next to the time that orders them (a follow's or a like's), under the
/// `author_*` names a post's author has, so one mapping reads both. Each is followed by its
/// `…_BEFORE_CURSOR` when there is a cursor, then its `…_NEWEST_FIRST`.
pub const FOLLOWERS: &str = "SELECT u.id AS author_id, u.username AS author_username, \
     u.display_name AS author_display_name, f.created_at AS listed_at \
     FROM follows f JOIN users u ON u.id = f.follower_id WHERE f.followee_id = ?";
pub const FOLLOWERS_BEFORE_CURSOR: &str = before_key!("f.created_at", "f.follower_id");
pub const FOLLOWERS_NEWEST_FIRST: &str = " ORDER BY f.created_at DESC, f.follower_id DESC LIMIT ?";
pub const FOLLOWING: &str = "SELECT u.id AS author_id, u.username AS author_username, \
     u.display_name AS author_display_name, f.created_at AS listed_at \
     FROM follows f JOIN users u ON u.id = f.followee_id WHERE f.follower_id = ?";
pub const FOLLOWING_BEFORE_CURSOR: &str = before_key!("f.created_at", "f.followee_id");
pub const FOLLOWING_NEWEST_FIRST: &str = " ORDER BY f.created_at DESC, f.followee_id DESC LIMIT ?";
pub const LIKERS: &str = "SELECT u.id AS author_id, u.username AS author_username, \
     u.display_name AS author_display_name, l.created_at AS listed_at \
     FROM likes l JOIN users u ON u.id = l.user_id WHERE l.post_id = ?";
pub const LIKERS_BEFORE_CURSOR: &str = before_key!("l.created_at", "l.user_id");
pub const LIKERS_NEWEST_FIRST: &str = " ORDER BY l.created_at DESC, l.user_id DESC LIMIT ?";

/// Likes touch only `likes`: no counter row is written, so likes of one post never queue.
pub const INSERT_LIKE: &str = "INSERT INTO likes (post_id, user_id, created_at) VALUES (?, ?, ?) \
     ON CONFLICT (post_id, user_id) DO NOTHING";
pub const DELETE_LIKE: &str = "DELETE FROM likes WHERE post_id = ? AND user_id = ?";
/// Followed by `(?, ?, …)` with one placeholder per post.
pub const RECOUNT_LIKES: &str = "UPDATE posts SET like_count = \
     (SELECT COUNT(*) FROM likes l WHERE l.post_id = posts.id) WHERE id IN ";

/// A home feed page, one statement: [`POST_COLUMNS`] (the reader is the viewer), then this
/// head, the three branches — each completed by its cursor condition when there is one and by
/// [`FEED_BRANCH_TAIL`], so each walks its own index in order and stops after the page —, and
/// [`FEED_TAIL`]. `UNION` drops a post that is both an entry and pulled (its fan-out is under
/// way); both carry the post's own `created_at`, so the rows are equal. The page is cut from
/// the merged keys before any post is read, so only its posts are looked up with their
/// authors and likes.
pub const FEED_HEAD: &str = " JOIN (";
/// The reader's pushed entries. Only published posts get entries (a fan-out and a follow's
/// backfill take nothing else, and a published post only ever leaves by being deleted, with
/// its entries), so the entries are read without their posts; [`FEED_TAIL`] still keeps
/// published posts alone.
pub const FEED_ENTRIES: &str =
    "SELECT id, created_at FROM (SELECT fe.post_id AS id, fe.created_at \
     FROM feed_entries fe WHERE fe.user_id = ?";
pub const FEED_ENTRIES_BEFORE_CURSOR: &str = before_key!("fe.created_at", "fe.post_id");
pub const FEED_ENTRIES_NEWEST_FIRST: &str =
    " ORDER BY fe.created_at DESC, fe.post_id DESC LIMIT ?) e UNION ";
/// The reader's own published posts.
pub const FEED_OWN: &str = "SELECT id, created_at FROM (SELECT p.id, p.created_at FROM posts p \
     WHERE p.author_id = ? AND p.status = 'published'";
/// The published posts of followed authors that are not fanned out; the condition is the
/// `posts_pull` index's, word for word.
pub const FEED_PULLED: &str = " UNION SELECT id, created_at FROM (SELECT p.id, p.created_at \
     FROM follows f JOIN posts p ON p.author_id = f.followee_id \
     WHERE f.follower_id = ? AND p.status = 'published' AND NOT p.fanned_out";
/// Closes [`FEED_OWN`]'s and [`FEED_PULLED`]'s subquery.
pub const FEED_BRANCH_TAIL: &str = " ORDER BY p.created_at DESC, p.id DESC LIMIT ?) b";
pub const FEED_TAIL: &str = " ORDER BY created_at DESC, id DESC LIMIT ?) k ON k.id = p.id \
     WHERE p.status = 'published' ORDER BY p.created_at DESC, p.id DESC";

/// A home feed page's keys alone, with the reader's like of each: this head, the same three
/// branches as the full page (from [`FEED_ENTRIES`]), then [`FEED_KEYS_TAIL`]. For a reader
/// whose posts are read from the cache of published posts (`shutter_app::cache`); the binds
/// are the full page's.
pub const FEED_KEYS_HEAD: &str = "SELECT k.id, k.created_at, \
     EXISTS (SELECT 1 FROM likes l WHERE l.post_id = k.id AND l.user_id = ?) AS liked_by_me \
     FROM (";
pub const FEED_KEYS_TAIL: &str =
    " ORDER BY created_at DESC, id DESC LIMIT ?) k ORDER BY k.created_at DESC, k.id DESC";

/// Published posts by id: [`POST_COLUMNS`] (no viewer: `liked_by_me` is false), this, then a
/// [`crate::dialect::placeholder_list`].
pub const PUBLISHED_AMONG: &str = " WHERE p.status = 'published' AND p.id IN ";

/// Which of the posts in the [`crate::dialect::placeholder_list`] after this the user likes.
pub const LIKED_AMONG: &str = "SELECT post_id FROM likes WHERE user_id = ? AND post_id IN ";

/// Explore: [`POST_COLUMNS`], this, [`POSTS_BEFORE_CURSOR`] when there is a cursor, then
/// [`POSTS_NEWEST_FIRST`] (the `posts_published_created` index).
pub const WHERE_PUBLISHED: &str = " WHERE p.status = 'published'";

/// What a fan-out step needs to know about the post and its author, read once the author is
/// locked (see `FANOUT_LOCK_AUTHOR`).
pub const FANOUT_POST: &str = "SELECT p.author_id, p.status, p.fanned_out, p.created_at, \
     u.followers_count FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?";
/// The next batch of followers by id; optionally preceded by [`FANOUT_AFTER`] before
/// [`FANOUT_BATCH_TAIL`]. Binds: the author, [the last follower done], the batch size.
pub const FANOUT_BATCH: &str = "SELECT follower_id FROM follows WHERE followee_id = ?";
pub const FANOUT_AFTER: &str = " AND follower_id > ?";
pub const FANOUT_BATCH_TAIL: &str = " ORDER BY follower_id LIMIT ?";
/// Entries for the followers in `(after, last]`, the range the batch read. Binds: the post,
/// the author, the post's time, the author, the first bound (or '' to start from the first
/// follower: ids sort after the empty text), the last follower.
pub const FANOUT_INSERT: &str =
    "INSERT INTO feed_entries (user_id, post_id, author_id, created_at) \
     SELECT follower_id, ?, ?, ? FROM follows \
     WHERE followee_id = ? AND follower_id > ? AND follower_id <= ? \
     ON CONFLICT DO NOTHING";
/// With the last batch: entries for whoever followed since the post was created. A follower
/// who arrived while the fan-out was under way may sort before the batch that was running,
/// and its follow's backfill did not take the post (not fanned out yet); without this the
/// post would leave their feed once marked fanned out. Binds: the post, the author, the post's
/// time, the author, since when.
pub const FANOUT_CATCH_UP: &str =
    "INSERT INTO feed_entries (user_id, post_id, author_id, created_at) \
     SELECT follower_id, ?, ?, ? FROM follows WHERE followee_id = ? AND created_at >= ? \
     ON CONFLICT DO NOTHING";
pub const MARK_FANNED_OUT: &str = "UPDATE posts SET fanned_out = TRUE WHERE id = ?";

pub const PING: &str = "SELECT 1";
