-- Feed entries keyed by the order a feed page reads them in (SQLite).
--
-- Fan-out writes one entry per follower, each into a different reader's part of every B-tree
-- keyed by reader. 0005 had three such trees (the primary key (user_id, post_id), the page
-- index and the author index), so a post to 10 000 followers dirtied some 30 000 random pages.
-- Here the table itself is the page order, and uniqueness rides on it: an entry's
-- `created_at` is its post's, which never changes, so (user_id, created_at, post_id) is
-- unique exactly when (user_id, post_id) is. Inserts say `ON CONFLICT DO NOTHING`. An
-- unfollow's delete of one author's entries walks the reader's entries (the key's prefix)
-- instead of an index of its own. Deleting a post still finds its entries by `post_id`.
CREATE TABLE feed_entries_by_page (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id    TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, created_at DESC, post_id DESC)
) STRICT, WITHOUT ROWID;
INSERT INTO feed_entries_by_page (user_id, post_id, author_id, created_at)
    SELECT user_id, post_id, author_id, created_at FROM feed_entries;
DROP TABLE feed_entries;
ALTER TABLE feed_entries_by_page RENAME TO feed_entries;
CREATE INDEX feed_entries_post ON feed_entries (post_id);
