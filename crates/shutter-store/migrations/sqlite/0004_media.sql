-- Photos (SQLite): the variants a processed image got, and the photos of a post. The files
-- table already has the displayed width/height and the blurhash (0002), so it is unchanged.
--
-- A variant goes with its file (ON DELETE CASCADE), a post's media links with the post. The
-- link's file is NOT cascading: a file a post uses cannot be deleted on its own (the
-- adapter checks first and answers `file_in_use`; the foreign key is the backstop).
-- NO ACTION rather than RESTRICT: it is checked at the end of the statement, so deleting a
-- user, whose posts and files cascade in the same statement, is not refused midway (the
-- adapter also removes the user's links before deleting the user).

CREATE TABLE file_variants (
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    -- `thumb`, `w640`, `w1080`.
    name    TEXT NOT NULL CHECK (name <> ''),
    width   INTEGER NOT NULL CHECK (width >= 0),
    height  INTEGER NOT NULL CHECK (height >= 0),
    -- Bytes of the stored variant.
    size    INTEGER NOT NULL CHECK (size >= 0),
    PRIMARY KEY (file_id, name)
) STRICT, WITHOUT ROWID;

-- One row per photo of a post, `position` from 0 in the order the photos were given.
CREATE TABLE post_media (
    post_id  TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    file_id  TEXT NOT NULL REFERENCES files (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (post_id, position),
    -- A file is the photo of at most one post (this also indexes the look-up by file).
    CONSTRAINT post_media_file_unique UNIQUE (file_id)
) STRICT, WITHOUT ROWID;
