-- Files and their uploads (PostgreSQL). Ids and tags compare bytewise (COLLATE "C", as in
-- 0001), sizes and byte counts are BIGINT, timestamps BIGINT milliseconds since the epoch. A
-- file's row goes with its owner (ON DELETE CASCADE), its tags with the file. Usage (open
-- uploads, stored bytes) is summed from these rows by the Repo adapter, under a lock on the
-- owner's users row, so it needs no counters.

CREATE TABLE files (
    id                TEXT COLLATE "C" PRIMARY KEY,
    owner_id          TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename          TEXT NOT NULL,
    content_type      TEXT COLLATE "C" NOT NULL,
    size              BIGINT NOT NULL CHECK (size >= 0),
    declared_sha256   TEXT,
    declared_md5      TEXT,
    sha256            TEXT,
    md5               TEXT,
    visibility        TEXT NOT NULL CHECK (visibility IN ('private', 'public')),
    status            TEXT NOT NULL
                      CHECK (status IN ('pending', 'uploading', 'processing', 'ready', 'failed')),
    bytes_received    BIGINT NOT NULL DEFAULT 0 CHECK (bytes_received >= 0),
    -- An ErrorCode's text and a readable detail; set together, exactly on failed files.
    failure_code      TEXT,
    failure_detail    TEXT,
    width             BIGINT CHECK (width >= 0),
    height            BIGINT CHECK (height >= 0),
    blurhash          TEXT,
    upload_expires_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CHECK ((failure_code IS NULL) = (failure_detail IS NULL)),
    CHECK ((status = 'failed') = (failure_code IS NOT NULL))
);
-- Listing an owner's files newest first (keyset pagination), and summing their usage.
CREATE INDEX files_owner_created ON files (owner_id, created_at DESC, id DESC);
-- The sweeper's search for uploads whose window closed.
CREATE INDEX files_status_expiry ON files (status, upload_expires_at);

-- One row per tag of a file; `position` keeps the order the tags were given in.
CREATE TABLE file_tags (
    file_id  TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    tag      TEXT COLLATE "C" NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (file_id, tag)
);
CREATE INDEX file_tags_tag ON file_tags (tag, file_id);
