//! The [`SocialRepo`] port (follows, likes, home feeds) on SQLite and PostgreSQL, written once
//! (`social_repo_adapter!`) like the other adapters, on the post and user-summary mappings of
//! [`crate::repo`].
//!
//! **Feeds are hybrid.** A published post is pushed into its author's followers' feeds
//! (`feed_entries`) by [`SocialRepo::fanout_batch`], a batch of followers at a time, while the
//! author has fewer followers than the threshold; the last batch marks it `fanned_out`. A feed
//! page is one statement that merges, under one `(created_at, id)` keyset, the reader's
//! entries, the reader's own published posts, and the published posts of followed authors
//! that are not fanned out (big accounts, and fan-outs not finished). Each branch pushes the
//! cursor and the page size down to its own index; `UNION` drops a post that is in two of
//! them. So a post shows at once, never twice, and crossing the threshold either way needs no
//! repair: what was pushed stays pushed, what was not is pulled.
//!
//! **Races.** Likes touch only `likes` (no counter row: `recount_likes` brings `like_count`
//! up to date), so they never queue on a popular post. A follow or unfollow locks its two
//! users in id order (so `A → B` and `B → A` cannot deadlock) and keeps both counters exact.
//! The followee is locked exclusively, and a fan-out step locks its author in a mode that
//! conflicts with that one only: a fan-out never writes an entry for a follow being removed,
//! and a follow never slips between a fan-out step's reads and writes. A follower who arrives
//! while a fan-out is under way but sorts before its current batch is caught up by the last
//! batch (`FANOUT_CATCH_UP`). SQLite runs writers one at a time and needs no row locks.

use async_trait::async_trait;
use shutter_app::ports::{FanoutStep, FeedKey, RepoError, RepoResult, SocialRepo};
use shutter_core::domain::PostStatus;
use shutter_core::model::{PostRecord, UserSummary};
use shutter_core::{Cursor, Id, Page, PageRequest, Timestamp};
use sqlx::Row;

use crate::dialect::placeholder_list;
use crate::error::repo_error;
use crate::files::IDS_PER_STATEMENT;
use crate::queries as q;
use crate::repo::bind_ids;
use crate::repo::{bind_page, page_binds, parse_id, PgRepo, SqliteRepo};
use crate::rows::{Bind, Columns};
use crate::write::WriteTx;

/// How far before a post's `created_at` the last fan-out batch looks for new followers to
/// catch up (`FANOUT_CATCH_UP`): follows are stamped by the clock of whichever process took
/// them, which may lag the clock that stamped the post by a little. Extra entries cost
/// nothing (the insert skips the ones that exist).
const CATCH_UP_MARGIN_MS: i64 = 60_000;

/// How often a fan-out step is tried again when a follower vanished under it (a racing user
/// deletion makes the entry's foreign key fail; the next try no longer sees that follower).
const FANOUT_TRIES: usize = 3;

fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

macro_rules! social_repo_adapter {
    ($repo:ident) => {
        impl $repo {
            /// Locks the two users of a follow in id order (see `LOCK_FOLLOWER` /
            /// `LOCK_FOLLOWEE`); `false` if either is absent.
            async fn lock_follow_in(
                conn: &mut impl WriteTx,
                follower: Id,
                followee: Id,
            ) -> RepoResult<bool> {
                let mut parties = [
                    (follower, Self::LOCK_FOLLOWER),
                    (followee, Self::LOCK_FOLLOWEE),
                ];
                parties.sort_by_key(|(id, _)| *id);
                let mut found = true;
                for (id, lock) in parties {
                    let sql = [q::FOLLOW_PARTY, lock].concat();
                    let rows = conn
                        .fetch(&sql, vec![Bind::Text(id.to_string())], |_| Ok(()))
                        .await?;
                    found &= !rows.is_empty();
                }
                Ok(found)
            }

            /// A feed statement's binds: the reader as the viewer of the likes, then each
            /// branch's reader, cursor and page size, then the page size of the merge.
            fn feed_binds(user: Id, page: PageRequest) -> Vec<Bind> {
                let user = user.to_string();
                let mut binds = vec![Bind::Text(user.clone())];
                for _ in 0..3 {
                    binds.push(Bind::Text(user.clone()));
                    binds.extend(page_binds(page));
                }
                binds.push(Bind::Int(i64::from(page.limit) + 1));
                binds
            }

            async fn bump_follow_counters_in(
                conn: &mut impl WriteTx,
                follower: Id,
                followee: Id,
                by: i64,
            ) -> RepoResult<()> {
                for (statement, id) in [
                    (q::BUMP_FOLLOWING_COUNT, follower),
                    (q::BUMP_FOLLOWERS_COUNT, followee),
                ] {
                    let binds = vec![Bind::Int(by), Bind::Text(id.to_string())];
                    conn.execute(statement, binds).await?;
                }
                Ok(())
            }

            /// A page of users listed by `head` for `key`, newest first by the time each row
            /// carries as `listed_at` (a follow's or a like's), then the user's id; the
            /// cursor names that time and the user.
            async fn user_page(
                &self,
                head: &str,
                before_cursor: &str,
                newest_first: &str,
                key: Id,
                page: PageRequest,
            ) -> RepoResult<Page<UserSummary>> {
                let mut sql = head.to_owned();
                if page.after.is_some() {
                    sql.push_str(before_cursor);
                }
                sql.push_str(newest_first);
                let sql = Self::sql(&sql);
                let query = sqlx::query(&sql).bind(key.to_string());
                let rows = bind_page(query, page)
                    .fetch_all(&self.lagging)
                    .await
                    .map_err(repo_error)?;
                let listed = rows
                    .iter()
                    .map(|row| {
                        let at: i64 = row.try_get("listed_at").map_err(repo_error)?;
                        Ok((crate::rows::author(row)?, Timestamp::from_millis(at)))
                    })
                    .collect::<RepoResult<Vec<_>>>()?;
                Ok(
                    Page::from_rows(listed, page.limit, |(user, at)| Cursor::new(*at, user.id))
                        .map(|(user, _)| user),
                )
            }

            /// One try of `fanout_batch`, one transaction.
            async fn fanout_step(
                &self,
                post: Id,
                after: Option<Id>,
                batch: u32,
                threshold: u64,
            ) -> RepoResult<FanoutStep> {
                // On SQLite a hot transaction: the inline writer on this thread, so the
                // step's pages stay in one connection's cache between the requests' writes
                // (the job runs it off the async workers, see `Shutter::fanout_post`).
                let mut tx = self.begin_hot().await?;
                let text = |id: Id| Bind::Text(id.to_string());
                // A post's author never changes, so it is read before the author is locked;
                // the rest is read after, when no follow, unfollow, delete or publish of
                // theirs can run.
                let author = tx
                    .fetch(q::POST_AUTHOR, vec![text(post)], |row| {
                        row.text("author_id")
                    })
                    .await?;
                let Some(author) = author.into_iter().next() else {
                    return Ok(FanoutStep::Skipped);
                };
                let lock = [q::FOLLOW_PARTY, Self::FANOUT_AUTHOR_LOCK].concat();
                tx.fetch(&lock, vec![Bind::Text(author.clone())], |_| Ok(()))
                    .await?;
                let found = tx
                    .fetch(q::FANOUT_POST, vec![text(post)], |row| {
                        Ok((
                            row.text("status")?,
                            row.flag("fanned_out")?,
                            row.int("created_at")?,
                            row.int("followers_count")?,
                        ))
                    })
                    .await?;
                let Some((status, fanned_out, created_at, followers)) = found.into_iter().next()
                else {
                    return Ok(FanoutStep::Skipped);
                };
                if status != PostStatus::Published.as_str()
                    || fanned_out
                    || followers >= to_db(threshold)
                {
                    return Ok(FanoutStep::Skipped);
                }

                let batch = batch.max(1);
                let mut sql = q::FANOUT_BATCH.to_owned();
                let mut binds = vec![Bind::Text(author.clone())];
                if let Some(after) = after {
                    sql.push_str(q::FANOUT_AFTER);
                    binds.push(text(after));
                }
                sql.push_str(q::FANOUT_BATCH_TAIL);
                binds.push(Bind::Int(i64::from(batch)));
                let ids = tx.fetch(&sql, binds, |row| row.text("follower_id")).await?;

                // The binds every entry statement starts with: the post, its author, its
                // time, the author whose followers get it.
                let entry = || {
                    vec![
                        text(post),
                        Bind::Text(author.clone()),
                        Bind::Int(created_at),
                        Bind::Text(author.clone()),
                    ]
                };
                let mut rows = 0;
                if let Some(last) = ids.last() {
                    let mut binds = entry();
                    binds.push(Bind::Text(
                        after.map(|id| id.to_string()).unwrap_or_default(),
                    ));
                    binds.push(Bind::Text(last.clone()));
                    rows += tx.execute(q::FANOUT_INSERT, binds).await?;
                }
                let step = match ids.last() {
                    Some(last) if ids.len() >= batch as usize => FanoutStep::More {
                        last_follower: parse_id(last)?,
                        rows,
                    },
                    _ => {
                        let mut binds = entry();
                        binds.push(Bind::Int(created_at.saturating_sub(CATCH_UP_MARGIN_MS)));
                        rows += tx.execute(q::FANOUT_CATCH_UP, binds).await?;
                        tx.execute(q::MARK_FANNED_OUT, vec![text(post)]).await?;
                        FanoutStep::Done { rows }
                    }
                };
                Self::commit_hot(tx).await?;
                Ok(step)
            }
        }

        #[async_trait]
        impl SocialRepo for $repo {
            /// Following oneself is `Conflict("self_follow")` (the caller refuses it first).
            async fn follow(
                &self,
                follower: Id,
                followee: Id,
                now: Timestamp,
                backfill: u32,
            ) -> RepoResult<bool> {
                if follower == followee {
                    return Err(RepoError::Conflict("self_follow".to_owned()));
                }
                let mut tx = self.begin_hot().await?;
                if !Self::lock_follow_in(&mut tx, follower, followee).await? {
                    return Err(RepoError::Conflict("missing_reference".to_owned()));
                }
                let pair = || {
                    vec![
                        Bind::Text(follower.to_string()),
                        Bind::Text(followee.to_string()),
                    ]
                };
                let mut binds = pair();
                binds.push(Bind::Int(now.millis()));
                let inserted = tx.execute(q::INSERT_FOLLOW, binds).await? > 0;
                if inserted {
                    Self::bump_follow_counters_in(&mut tx, follower, followee, 1).await?;
                    if backfill > 0 {
                        let mut binds = pair();
                        binds.push(Bind::Int(i64::from(backfill)));
                        tx.execute(q::BACKFILL_FEED, binds).await?;
                    }
                }
                Self::commit_hot(tx).await?;
                Ok(inserted)
            }

            async fn unfollow(&self, follower: Id, followee: Id) -> RepoResult<bool> {
                if follower == followee {
                    return Ok(false);
                }
                let mut tx = self.begin_hot().await?;
                if !Self::lock_follow_in(&mut tx, follower, followee).await? {
                    return Ok(false);
                }
                let pair = || {
                    vec![
                        Bind::Text(follower.to_string()),
                        Bind::Text(followee.to_string()),
                    ]
                };
                let deleted = tx.execute(q::DELETE_FOLLOW, pair()).await? > 0;
                if deleted {
                    Self::bump_follow_counters_in(&mut tx, follower, followee, -1).await?;
                    tx.execute(q::UNFEED_AUTHOR, pair()).await?;
                }
                Self::commit_hot(tx).await?;
                Ok(deleted)
            }

            async fn followers(
                &self,
                user: Id,
                page: PageRequest,
            ) -> RepoResult<Page<UserSummary>> {
                self.user_page(
                    q::FOLLOWERS,
                    q::FOLLOWERS_BEFORE_CURSOR,
                    q::FOLLOWERS_NEWEST_FIRST,
                    user,
                    page,
                )
                .await
            }

            async fn following(
                &self,
                user: Id,
                page: PageRequest,
            ) -> RepoResult<Page<UserSummary>> {
                self.user_page(
                    q::FOLLOWING,
                    q::FOLLOWING_BEFORE_CURSOR,
                    q::FOLLOWING_NEWEST_FIRST,
                    user,
                    page,
                )
                .await
            }

            /// One statement; a missing post or user is `Conflict("missing_reference")`.
            async fn like(&self, post: Id, user: Id, now: Timestamp) -> RepoResult<bool> {
                let binds = vec![
                    Bind::Text(post.to_string()),
                    Bind::Text(user.to_string()),
                    Bind::Int(now.millis()),
                ];
                Ok(self.write_once(q::INSERT_LIKE, binds).await? > 0)
            }

            async fn unlike(&self, post: Id, user: Id) -> RepoResult<bool> {
                let binds = vec![Bind::Text(post.to_string()), Bind::Text(user.to_string())];
                Ok(self.write_once(q::DELETE_LIKE, binds).await? > 0)
            }

            async fn likers(&self, post: Id, page: PageRequest) -> RepoResult<Page<UserSummary>> {
                self.user_page(
                    q::LIKERS,
                    q::LIKERS_BEFORE_CURSOR,
                    q::LIKERS_NEWEST_FIRST,
                    post,
                    page,
                )
                .await
            }

            /// In id order, so two recounts of overlapping posts take the rows' locks in the
            /// same order.
            async fn recount_likes(&self, posts: &[Id]) -> RepoResult<()> {
                let mut ids = posts.to_vec();
                ids.sort_unstable();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let sql = [q::RECOUNT_LIKES, &placeholder_list(chunk.len())].concat();
                    let sql = Self::sql(&sql);
                    let query = bind_ids(sqlx::query(&sql), chunk);
                    query.execute(&mut *tx).await.map_err(repo_error)?;
                }
                tx.commit().await.map_err(repo_error)?;
                Ok(())
            }

            async fn feed(&self, user: Id, page: PageRequest) -> RepoResult<Page<PostRecord>> {
                let sql = feed_sql(&[q::POST_COLUMNS, q::FEED_HEAD], q::FEED_TAIL, page);
                let posts = self
                    .read(
                        &self.lagging,
                        &sql,
                        Self::feed_binds(user, page),
                        crate::rows::post,
                    )
                    .await?;
                Ok(Page::from_rows(posts, page.limit, PostRecord::cursor))
            }

            async fn feed_keys(&self, user: Id, page: PageRequest) -> RepoResult<Page<FeedKey>> {
                let sql = feed_sql(&[q::FEED_KEYS_HEAD], q::FEED_KEYS_TAIL, page);
                let keys = self
                    .read(&self.lagging, &sql, Self::feed_binds(user, page), feed_key)
                    .await?;
                Ok(Page::from_rows(keys, page.limit, FeedKey::cursor))
            }

            async fn liked_among(&self, user: Id, posts: &[Id]) -> RepoResult<Vec<Id>> {
                if posts.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = [q::LIKED_AMONG, &placeholder_list(posts.len())].concat();
                let mut binds = vec![Bind::Text(user.to_string())];
                binds.extend(crate::rows::id_binds(posts));
                self.read(&self.pool, &sql, binds, |row| {
                    parse_id(&row.text("post_id")?)
                })
                .await
            }

            async fn explore(
                &self,
                viewer: Option<Id>,
                page: PageRequest,
            ) -> RepoResult<Page<PostRecord>> {
                let mut sql = [q::POST_COLUMNS, q::WHERE_PUBLISHED].concat();
                if page.after.is_some() {
                    sql.push_str(q::POSTS_BEFORE_CURSOR);
                }
                sql.push_str(q::POSTS_NEWEST_FIRST);
                let sql = Self::sql(&sql);
                let query = sqlx::query(&sql).bind(viewer.map(|v| v.to_string()));
                let rows = bind_page(query, page)
                    .fetch_all(&self.lagging)
                    .await
                    .map_err(repo_error)?;
                let posts = rows
                    .iter()
                    .map(Self::post_from_row)
                    .collect::<RepoResult<Vec<_>>>()?;
                Ok(Page::from_rows(posts, page.limit, PostRecord::cursor))
            }

            /// A `batch` of 0 counts as 1. Re-running a step (a job that lost its lease)
            /// writes nothing twice: entries are inserted if absent, and once the post is
            /// marked fanned out every step is `Skipped`.
            async fn fanout_batch(
                &self,
                post: Id,
                after: Option<Id>,
                batch: u32,
                threshold: u64,
            ) -> RepoResult<FanoutStep> {
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self.fanout_step(post, after, batch, threshold).await {
                        Err(RepoError::Conflict(rule))
                            if rule == "missing_reference" && tries < FANOUT_TRIES =>
                        {
                            continue
                        }
                        outcome => return outcome,
                    }
                }
            }
        }
    };
}

social_repo_adapter!(SqliteRepo);
social_repo_adapter!(PgRepo);

/// A feed statement: `head`, the three branches (each with its cursor condition when the
/// page has a cursor), then `tail`.
fn feed_sql(head: &[&str], tail: &str, page: PageRequest) -> String {
    let branch_cursor = |cursor: &'static str| {
        if page.after.is_some() {
            cursor
        } else {
            ""
        }
    };
    let mut sql = head.concat();
    for part in [
        q::FEED_ENTRIES,
        branch_cursor(q::FEED_ENTRIES_BEFORE_CURSOR),
        q::FEED_ENTRIES_NEWEST_FIRST,
        q::FEED_OWN,
        branch_cursor(q::POSTS_BEFORE_CURSOR),
        q::FEED_BRANCH_TAIL,
        q::FEED_PULLED,
        branch_cursor(q::POSTS_BEFORE_CURSOR),
        q::FEED_BRANCH_TAIL,
        tail,
    ] {
        sql.push_str(part);
    }
    sql
}

/// A [`q::FEED_KEYS_HEAD`] row.
fn feed_key(row: &dyn Columns) -> RepoResult<FeedKey> {
    Ok(FeedKey {
        id: parse_id(&row.text("id")?)?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        liked_by_me: row.flag("liked_by_me")?,
    })
}
