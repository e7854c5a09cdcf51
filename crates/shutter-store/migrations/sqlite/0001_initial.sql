-- Shutter's schema on SQLite. Ids are hyphenated UUIDv7 text, timestamps milliseconds since
-- the epoch, counters 64-bit integers (STRICT tables: INTEGER is SQLite's 64-bit integer, the
-- BIGINT of the PostgreSQL schema). Counters are kept exact by the Repo adapter, in the same
-- transaction as the rows they count.

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    -- The caller lowercases; the CHECK makes "unique" mean "unique case-insensitively".
    username        TEXT NOT NULL CHECK (username = lower(username)),
    display_name    TEXT NOT NULL,
    bio             TEXT NOT NULL DEFAULT '',
    password_hash   TEXT,
    ext_issuer      TEXT,
    ext_subject     TEXT,
    tier            TEXT NOT NULL CHECK (tier IN ('basic', 'premium')),
    role            TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at      INTEGER NOT NULL,
    followers_count INTEGER NOT NULL DEFAULT 0,
    following_count INTEGER NOT NULL DEFAULT 0,
    posts_count     INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT users_username_unique UNIQUE (username),
    CONSTRAINT users_external_identity_unique UNIQUE (ext_issuer, ext_subject)
) STRICT;

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE posts (
    id            TEXT PRIMARY KEY NOT NULL,
    author_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caption       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'published', 'failed')),
    like_count    INTEGER NOT NULL DEFAULT 0,
    comment_count INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX posts_author_created ON posts (author_id, created_at DESC, id DESC);

CREATE TABLE comments (
    id         TEXT PRIMARY KEY NOT NULL,
    post_id    TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX comments_post_created ON comments (post_id, created_at, id);
CREATE INDEX comments_author ON comments (author_id);

CREATE TABLE likes (
    post_id    TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (post_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX likes_user ON likes (user_id);

CREATE TABLE follows (
    follower_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX follows_followee ON follows (followee_id);

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    -- NULL while the first request is still running.
    status       INTEGER,
    body         TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
