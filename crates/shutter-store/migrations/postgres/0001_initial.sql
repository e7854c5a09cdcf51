-- Shutter's schema on PostgreSQL. Ids are hyphenated UUIDv7 text compared bytewise
-- (COLLATE "C": the same order as SQLite and as the ids themselves, whatever the database's
-- default collation), timestamps BIGINT milliseconds since the epoch, counters BIGINT. Counters
-- are kept exact by the Repo adapter, in the same transaction as the rows they count.

CREATE TABLE users (
    id              TEXT COLLATE "C" PRIMARY KEY,
    -- The caller lowercases; the CHECK makes "unique" mean "unique case-insensitively".
    username        TEXT NOT NULL CHECK (username = lower(username)),
    display_name    TEXT NOT NULL,
    bio             TEXT NOT NULL DEFAULT '',
    password_hash   TEXT,
    ext_issuer      TEXT,
    ext_subject     TEXT,
    tier            TEXT NOT NULL CHECK (tier IN ('basic', 'premium')),
    role            TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at      BIGINT NOT NULL,
    followers_count BIGINT NOT NULL DEFAULT 0,
    following_count BIGINT NOT NULL DEFAULT 0,
    posts_count     BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT users_username_unique UNIQUE (username),
    CONSTRAINT users_external_identity_unique UNIQUE (ext_issuer, ext_subject)
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE posts (
    id            TEXT COLLATE "C" PRIMARY KEY,
    author_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caption       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'published', 'failed')),
    like_count    BIGINT NOT NULL DEFAULT 0,
    comment_count BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX posts_author_created ON posts (author_id, created_at DESC, id DESC);

CREATE TABLE comments (
    id         TEXT COLLATE "C" PRIMARY KEY,
    post_id    TEXT COLLATE "C" NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX comments_post_created ON comments (post_id, created_at, id);
CREATE INDEX comments_author ON comments (author_id);

CREATE TABLE likes (
    post_id    TEXT COLLATE "C" NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX likes_user ON likes (user_id);

CREATE TABLE follows (
    follower_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id);

CREATE TABLE idempotency_keys (
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    -- NULL while the first request is still running.
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
