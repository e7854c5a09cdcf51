-- Follows, likes and the hybrid home feed (PostgreSQL). `follows` and `likes` exist since 0001
-- (both with `created_at`); this adds what listing them newest first and building feeds
-- needs. Ids compare bytewise (COLLATE "C", as in 0001).
--
-- A published post is pushed into its author's followers' feeds (`feed_entries`) by
-- `fanout_post` jobs when the author has fewer followers than the threshold, and marked
-- `fanned_out` when the last batch is written. Until then, and forever for big accounts, it
-- is pulled at read time: a feed page merges the reader's entries, the reader's own posts and
-- the followed authors' published posts that are not fanned out, under one keyset.

-- Existing posts were never fanned out, so they are pulled.
ALTER TABLE posts ADD COLUMN fanned_out BOOLEAN NOT NULL DEFAULT FALSE;

-- The pull side of a feed: per followed author, their published posts not fanned out,
-- newest first. Small (big accounts' posts and fan-outs in flight), hence partial. Queries
-- repeat its condition (`status = 'published' AND NOT fanned_out`) so the planner can prove
-- they fit it.
CREATE INDEX posts_pull ON posts (author_id, created_at DESC, id DESC)
    WHERE status = 'published' AND NOT fanned_out;
-- Explore: everyone's published posts, newest first.
CREATE INDEX posts_published_created ON posts (created_at DESC, id DESC)
    WHERE status = 'published';

-- One row per (reader, pushed post); `created_at` and `author_id` are the post's, copied so
-- a page is read from this index alone and an unfollow finds the author's entries.
CREATE TABLE feed_entries (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id    TEXT COLLATE "C" NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX feed_entries_page ON feed_entries (user_id, created_at DESC, post_id DESC);
CREATE INDEX feed_entries_author ON feed_entries (user_id, author_id);
-- Deleting a post cascades to its entries: without this every delete would scan the table.
CREATE INDEX feed_entries_post ON feed_entries (post_id);

-- Followers and followings, newest follow first (keyset on the follow's time, then the
-- listed user's id); the first also finds recent follows when a fan-out finishes.
CREATE INDEX follows_followers_page ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_following_page ON follows (follower_id, created_at DESC, followee_id DESC);
-- Fan-out walks an author's followers in id order, a batch at a time. (Replaces 0001's
-- index on `followee_id` alone, which does not give that order here.)
DROP INDEX follows_followee;
CREATE INDEX follows_followee ON follows (followee_id, follower_id);

-- Likers, newest like first (keyset on the like's time, then the user's id).
CREATE INDEX likes_post_page ON likes (post_id, created_at DESC, user_id DESC);
