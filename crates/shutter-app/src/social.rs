//! Follows, likes and feeds. Likes are written as rows only; each post's `like_count` is
//! recounted shortly after (at most every [`LIKE_FLUSH`]), so a like storm on one post never
//! queues its requests on that post's row. Published posts are pushed into followers' feeds
//! by `fanout_post` jobs; see `SocialRepo` for how a feed page is merged.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use shutter_core::model::{PostRecord, UserSummary};
use shutter_core::{Id, Page, PageRequest};

use crate::accounts::Principal;
use crate::jobs::JobError;
use crate::ports::{job_kinds, FanoutStep, NewJob, RepoError, RepoResult};
use crate::posts::{Known, PostView};
use crate::{AppError, AppResult, Shutter};

/// How often buffered like counts are brought up to date.
pub const LIKE_FLUSH: Duration = Duration::from_millis(200);
/// Followers written per fan-out statement.
const FANOUT_BATCH: u32 = 1000;
/// A new follow copies this many of the followee's recent posts into the follower's feed.
const FOLLOW_BACKFILL: u32 = 50;

/// In-process set of posts whose like counts changed since the last flush.
#[derive(Default)]
pub(crate) struct LikeBuffer {
    dirty: std::sync::Mutex<HashSet<Id>>,
}

/// A home feed page, and whether it is the explore page standing in for it.
pub struct FeedPage {
    pub page: Page<PostView>,
    pub fallback: bool,
}

#[derive(Deserialize)]
struct FanoutPayload {
    post_id: Id,
}

fn missing_to_not_found(what: &'static str) -> impl Fn(RepoError) -> AppError {
    move |e| match e {
        RepoError::Conflict(_) => AppError::not_found(what),
        other => other.into(),
    }
}

impl Shutter {
    pub async fn follow(&self, who: &Principal, user: Id) -> AppResult<()> {
        if user == who.id() {
            return Err(AppError::field("id", "you cannot follow yourself"));
        }
        self.user(user).await?;
        self.social
            .follow(who.id(), user, self.clock.now(), FOLLOW_BACKFILL)
            .await
            .map_err(missing_to_not_found("user"))?;
        Ok(())
    }

    /// Idempotent: not following `user` afterwards, yourself included (which nobody follows).
    pub async fn unfollow(&self, who: &Principal, user: Id) -> AppResult<()> {
        self.user(user).await?;
        self.social.unfollow(who.id(), user).await?;
        Ok(())
    }

    pub async fn followers(&self, user: Id, page: PageRequest) -> AppResult<Page<UserSummary>> {
        self.user(user).await?;
        Ok(self.social.followers(user, page).await?)
    }

    pub async fn following(&self, user: Id, page: PageRequest) -> AppResult<Page<UserSummary>> {
        self.user(user).await?;
        Ok(self.social.following(user, page).await?)
    }

    pub async fn like(&self, who: &Principal, post: Id) -> AppResult<()> {
        self.visible_post(post, Some(who)).await?;
        if self
            .social
            .like(post, who.id(), self.clock.now())
            .await
            .map_err(missing_to_not_found("post"))?
        {
            self.mark_likes_dirty(post);
        }
        Ok(())
    }

    pub async fn unlike(&self, who: &Principal, post: Id) -> AppResult<()> {
        self.visible_post(post, Some(who)).await?;
        if self.social.unlike(post, who.id()).await? {
            self.mark_likes_dirty(post);
        }
        Ok(())
    }

    pub async fn likers(
        &self,
        post: Id,
        viewer: Option<&Principal>,
        page: PageRequest,
    ) -> AppResult<Page<UserSummary>> {
        self.visible_post(post, viewer).await?;
        Ok(self.social.likers(post, page).await?)
    }

    fn mark_likes_dirty(&self, post: Id) {
        if let Ok(mut dirty) = self.likes.dirty.lock() {
            dirty.insert(post);
        }
    }

    /// Recounts the likes of posts liked or unliked since the last flush.
    pub async fn flush_like_counts(&self) -> AppResult<()> {
        let posts: Vec<Id> = match self.likes.dirty.lock() {
            Ok(mut dirty) => dirty.drain().collect(),
            Err(_) => return Err(AppError::internal(anyhow::anyhow!("like buffer poisoned"))),
        };
        if posts.is_empty() {
            return Ok(());
        }
        for chunk in posts.chunks(500) {
            let recounted = self.social.recount_likes(chunk).await;
            for post in chunk {
                self.posts_cache.forget(*post);
            }
            if let Err(e) = recounted {
                // Keep them for the next flush.
                if let Ok(mut dirty) = self.likes.dirty.lock() {
                    dirty.extend(chunk.iter().copied());
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The home feed. If it cannot be built, the explore page stands in (and says so) rather
    /// than the request failing.
    pub async fn feed(&self, who: &Principal, page: PageRequest) -> AppResult<FeedPage> {
        let epoch = self.posts_cache.epoch();
        let home = match epoch {
            Some(_) => self.home_from_cache(who.id(), page).await,
            None => self
                .social
                .feed(who.id(), page)
                .await
                .map(|posts| posts.map(Known::fresh)),
        };
        match home {
            Ok(posts) => {
                let next_cursor = posts.next_cursor;
                let items = self.assemble(posts.items, epoch).await?;
                Ok(FeedPage {
                    page: Page { items, next_cursor },
                    fallback: false,
                })
            }
            Err(e) => {
                tracing::warn!(user.id = %who.id(), error = %e, "home feed unavailable; serving explore");
                metrics::counter!("feed_fallbacks_total").increment(1);
                let epoch = self.posts_cache.epoch();
                let posts = self.social.explore(Some(who.id()), page).await?;
                Ok(FeedPage {
                    page: self.views(posts, epoch).await?,
                    fallback: true,
                })
            }
        }
    }

    /// A home feed page from its keys, its posts from the cache and those it lacks read in
    /// one statement. A post deleted between the two reads is left out, so such a page may
    /// hold fewer posts than its limit while a next page exists (the cursor is the keys').
    async fn home_from_cache(&self, user: Id, page: PageRequest) -> RepoResult<Page<Known>> {
        let keys = self.social.feed_keys(user, page).await?;
        let mut cached: Vec<Option<Known>> = keys
            .items
            .iter()
            .map(|key| {
                self.posts_cache
                    .get(key.id)
                    .map(|post| Known::cached(&post))
            })
            .collect();
        let missing: Vec<Id> = keys
            .items
            .iter()
            .zip(&cached)
            .filter(|(_, post)| post.is_none())
            .map(|(key, _)| key.id)
            .collect();
        if !missing.is_empty() {
            let mut read: HashMap<Id, PostRecord> = self
                .repo
                .published_posts(&missing)
                .await?
                .into_iter()
                .map(|post| (post.id, post))
                .collect();
            for (key, post) in keys.items.iter().zip(cached.iter_mut()) {
                if post.is_none() {
                    *post = read.remove(&key.id).map(Known::fresh);
                }
            }
        }
        let items = keys
            .items
            .iter()
            .zip(cached)
            .filter_map(|(key, post)| {
                let mut post = post?;
                post.record.liked_by_me = key.liked_by_me;
                Some(post)
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: keys.next_cursor,
        })
    }

    pub async fn explore(
        &self,
        viewer: Option<&Principal>,
        page: PageRequest,
    ) -> AppResult<Page<PostView>> {
        let epoch = self.posts_cache.epoch();
        let posts = self.social.explore(viewer.map(Principal::id), page).await?;
        self.views(posts, epoch).await
    }

    /// Enqueues the fan-out of a post that was just published.
    pub(crate) async fn after_publish(&self, post: Id) {
        let now = self.clock.now();
        let job = NewJob {
            id: Id::new(),
            kind: job_kinds::FANOUT_POST.to_owned(),
            payload: serde_json::json!({ "post_id": post.to_string() }).to_string(),
            priority: 5,
            run_at: now,
            max_attempts: crate::ports::DEFAULT_MAX_ATTEMPTS,
            created_at: now,
        };
        // If this is lost (a crash right here), the post is simply never fanned out and is
        // pulled at read time instead: feeds stay correct.
        if let Err(e) = self.enqueue(job).await {
            tracing::warn!(post.id = %post, error = %e.detail, "could not enqueue a fan-out; the post will be pulled instead");
        }
    }

    /// `fanout_post`: writes the post into every follower's feed, a batch at a time.
    pub(crate) async fn fanout_post(&self, payload: &str) -> Result<(), JobError> {
        let p: FanoutPayload = serde_json::from_str(payload).map_err(|e| JobError {
            message: format!("unreadable payload: {e}"),
        })?;
        let threshold = self.config.feed.fanout_threshold;
        let mut after = None;
        loop {
            let started = std::time::Instant::now();
            let step = off_the_workers(self.social.fanout_batch(
                p.post_id,
                after,
                FANOUT_BATCH,
                threshold,
            ))
            .await
            .map_err(|e| JobError {
                message: format!("fan-out: {e}"),
            })?;
            tracing::debug!(
                post.id = %p.post_id,
                step = ?step,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "fan-out batch"
            );
            match step {
                FanoutStep::More {
                    last_follower,
                    rows,
                } => {
                    metrics::counter!("feed_fanout_rows_total").increment(rows);
                    after = Some(last_follower);
                }
                FanoutStep::Done { rows } => {
                    metrics::counter!("feed_fanout_rows_total").increment(rows);
                    return Ok(());
                }
                FanoutStep::Skipped => return Ok(()),
            }
        }
    }
}

/// Runs `step` with this thread handed over to the runtime's blocking side, when the runtime
/// has other workers to take its tasks: a fan-out step writes a thousand entries in one
/// statement (on SQLite on the calling thread, about 15 ms), longer than a request's write
/// may hold an async worker.
async fn off_the_workers<F: std::future::Future>(step: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(step))
        }
        _ => step.await,
    }
}
