//! Published posts as every viewer sees them alike, kept in this process: a feed page or a
//! post read takes them from here instead of reading each post with its author again.
//!
//! **Only where this process makes every change**, i.e. on the embedded database, which
//! one node alone uses ([`Deps::one_node`](crate::Deps::one_node)); with several nodes on
//! PostgreSQL another node's change could not reach this copy at once, so the cache is off.
//!
//! What is kept per post is what no viewer changes: the [`PostRecord`] without
//! `liked_by_me` (each read asks for the viewer's like), and whether the post has photos
//! (a published post's photos never change, so a post without any skips the media query).
//! Only published posts are kept; a post is published once and then changes only by its
//! caption, its counts, its author's names and its deletion, and each of those use cases
//! forgets the post (or, for a renamed or deleted account, everything) right after its
//! change is committed.
//!
//! A read must not put back what a change just made stale: it takes [`PostCache::epoch`]
//! before it reads the database, and [`PostCache::insert`] keeps the post only if no post
//! was forgotten since. A change bumps the epoch before it removes the entry, under the
//! entry's shard lock, so an insert either sees the new epoch or is removed after it.
//!
//! Memory is bounded: at most [`MAX_BYTES`] of posts (captions and names counted), shard
//! by shard; a full shard drops a quarter of its posts, whichever come first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use shutter_core::domain::PostStatus;
use shutter_core::model::PostRecord;
use shutter_core::Id;

/// What the cache may hold in all, approximately.
pub const MAX_BYTES: usize = 32 << 20;
const SHARDS: usize = 16;
const SHARD_BYTES: usize = MAX_BYTES / SHARDS;
/// What a post costs besides its strings: the record, the map's slot, the `Arc`.
const ENTRY_OVERHEAD: usize = 192;

/// A published post as any viewer sees it, with `liked_by_me` false.
#[derive(Debug)]
pub(crate) struct CachedPost {
    pub record: PostRecord,
    pub has_media: bool,
}

impl CachedPost {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD
            + self.record.caption.len()
            + self.record.author.username.len()
            + self.record.author.display_name.len()
    }
}

#[derive(Default)]
struct Shard {
    posts: HashMap<Id, Arc<CachedPost>>,
    bytes: usize,
}

/// Cheap to clone: the clones share one cache.
#[derive(Clone)]
pub(crate) struct PostCache {
    enabled: bool,
    /// Bumped by every change that forgets a post.
    epoch: Arc<AtomicU64>,
    shards: Arc<[Mutex<Shard>]>,
}

/// When a change's future is dropped before it ends, its commit may still land after the
/// guard forgot the post (sqlx runs the statement on a thread of its own, and SQLite may
/// wait up to its busy timeout, 5 s), and a read in between may have kept the old row: the
/// post is forgotten again after each of these delays, one after the other.
const LATE_COMMIT: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(10),
];

impl PostCache {
    pub fn new(enabled: bool) -> Self {
        PostCache {
            enabled,
            epoch: Arc::new(AtomicU64::new(0)),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The epoch to pass to [`Self::insert`], taken before the database is read; `None`
    /// when the cache is off.
    pub fn epoch(&self) -> Option<u64> {
        self.enabled.then(|| self.epoch.load(Ordering::SeqCst))
    }

    pub fn get(&self, id: Id) -> Option<Arc<CachedPost>> {
        if !self.enabled {
            return None;
        }
        self.shard(id).posts.get(&id).cloned()
    }

    /// Keeps a published post read from the database after `epoch` was taken, unless a
    /// post was forgotten since.
    pub fn insert(&self, epoch: u64, mut record: PostRecord, has_media: bool) {
        if !self.enabled || record.status != PostStatus::Published {
            return;
        }
        record.liked_by_me = false;
        let post = CachedPost { record, has_media };
        let cost = post.cost();
        let id = post.record.id;
        let mut shard = self.shard(id);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if shard.bytes + cost > SHARD_BYTES {
            let drop: Vec<Id> = shard
                .posts
                .keys()
                .take(shard.posts.len() / 4 + 1)
                .copied()
                .collect();
            for old in drop {
                shard.remove(old);
            }
        }
        shard.bytes += cost;
        if let Some(old) = shard.posts.insert(id, Arc::new(post)) {
            shard.bytes -= old.cost();
        }
    }

    /// A guard taken before a change: [`Forget::done`] after the change forgets the post.
    /// If the change's future is dropped halfway instead (a client gone, a deadline), the
    /// guard forgets it when dropped and again after [`LATE_COMMIT`], as a commit under way
    /// still lands.
    pub fn forget_after(&self, id: Id) -> Forget<'_> {
        Forget {
            cache: self,
            post: Some(id),
            done: false,
        }
    }

    /// [`Self::forget_after`] for a change that reaches many posts: forgets them all.
    pub fn clear_after(&self) -> Forget<'_> {
        Forget {
            cache: self,
            post: None,
            done: false,
        }
    }

    fn forget_some(&self, post: Option<Id>) {
        match post {
            Some(id) => self.forget(id),
            None => self.clear(),
        }
    }

    /// Forgets a post that changed or is gone; call after the change is committed.
    pub fn forget(&self, id: Id) {
        if !self.enabled {
            return;
        }
        let mut shard = self.shard(id);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        shard.remove(id);
    }

    /// Forgets every post: after a change that reaches many posts (an author's names, a
    /// deleted account's comments and likes).
    pub fn clear(&self) {
        if !self.enabled {
            return;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.posts.clear();
            shard.bytes = 0;
        }
    }

    fn shard(&self, id: Id) -> MutexGuard<'_, Shard> {
        // UUIDv7: the low bits are random.
        let n = (id.as_uuid().as_u128() as usize) % SHARDS;
        lock(&self.shards[n])
    }
}

/// See [`PostCache::forget_after`].
#[must_use = "call `done` after the change"]
pub(crate) struct Forget<'a> {
    cache: &'a PostCache,
    /// One post, or every post.
    post: Option<Id>,
    done: bool,
}

impl Forget<'_> {
    /// The change ended (committed or not): forgets now.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.cache.forget_some(self.post);
        if self.done || !self.cache.enabled {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, post) = (self.cache.clone(), self.post);
            runtime.spawn(async move {
                for delay in LATE_COMMIT {
                    tokio::time::sleep(delay).await;
                    cache.forget_some(post);
                }
            });
        }
    }
}

impl Shard {
    fn remove(&mut self, id: Id) {
        if let Some(old) = self.posts.remove(&id) {
            self.bytes -= old.cost();
        }
    }
}

/// A shard's lock; a panic while it was held left nothing half-done that matters (the map
/// is whole between statements), so a poisoned lock is taken as it is.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutter_core::model::UserSummary;
    use shutter_core::Timestamp;

    fn post(caption: &str) -> PostRecord {
        PostRecord {
            id: Id::new(),
            author: UserSummary {
                id: Id::new(),
                username: "ann".into(),
                display_name: "Ann".into(),
            },
            caption: caption.into(),
            status: PostStatus::Published,
            like_count: 3,
            comment_count: 1,
            liked_by_me: true,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn keeps_published_posts_without_the_viewers_like() {
        let cache = PostCache::new(true);
        let p = post("hello");
        let epoch = cache.epoch().unwrap_or_default();
        cache.insert(epoch, p.clone(), false);
        let got = cache.get(p.id).map(|c| c.record.clone());
        assert_eq!(
            got,
            Some(PostRecord {
                liked_by_me: false,
                ..p.clone()
            })
        );
        let mut pending = post("later");
        pending.status = PostStatus::Pending;
        cache.insert(epoch, pending.clone(), false);
        assert!(cache.get(pending.id).is_none());
    }

    #[test]
    fn a_read_from_before_a_change_is_not_kept() {
        let cache = PostCache::new(true);
        let p = post("old caption");
        let before = cache.epoch().unwrap_or_default();
        // A change to any post lands between the read and its insert.
        cache.forget(Id::new());
        cache.insert(before, p.clone(), false);
        assert!(cache.get(p.id).is_none());
        let after = cache.epoch().unwrap_or_default();
        cache.insert(after, p.clone(), false);
        assert!(cache.get(p.id).is_some());
        cache.forget(p.id);
        assert!(cache.get(p.id).is_none());
    }

    #[test]
    fn a_guard_forgets_when_it_drops_however_the_change_ends() {
        use std::future::Future;
        let cache = PostCache::new(true);
        let p = post("kept");
        cache.insert(cache.epoch().unwrap_or_default(), p.clone(), false);
        let changed = async {
            let _forget = cache.forget_after(p.id);
            std::future::pending::<()>().await;
        };
        // The change's future is dropped before it ends, as a request's may be.
        drop(changed);
        assert!(
            cache.get(p.id).is_some(),
            "an unstarted change forgets nothing yet"
        );
        let mut changed = Box::pin(async {
            let _forget = cache.forget_after(p.id);
            std::future::pending::<()>().await;
        });
        let waker = std::task::Waker::noop();
        let _ = changed
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        assert!(cache.get(p.id).is_some(), "still mid-change");
        drop(changed);
        assert!(
            cache.get(p.id).is_none(),
            "forgotten once the change is dropped"
        );

        let other = post("other");
        cache.insert(cache.epoch().unwrap_or_default(), other.clone(), false);
        drop(cache.clear_after());
        assert!(cache.get(other.id).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_dropped_halfway_forgets_again_once_its_commit_may_have_landed() {
        let cache = PostCache::new(true);
        let p = post("old");
        let changed = async {
            let forget = cache.forget_after(p.id);
            std::future::pending::<()>().await;
            forget.done();
        };
        let mut changed = Box::pin(changed);
        let waker = std::task::Waker::noop();
        let _ =
            std::future::Future::poll(changed.as_mut(), &mut std::task::Context::from_waker(waker));
        drop(changed);
        // A read that began after the drop and read the row before the commit landed.
        cache.insert(cache.epoch().unwrap_or_default(), p.clone(), false);
        assert!(cache.get(p.id).is_some());
        tokio::time::sleep(LATE_COMMIT[0] * 2).await;
        assert!(cache.get(p.id).is_none(), "forgotten again");

        // A change that ended forgets at once and leaves nothing behind.
        let q = post("q");
        cache.insert(cache.epoch().unwrap_or_default(), q.clone(), false);
        cache.forget_after(q.id).done();
        assert!(cache.get(q.id).is_none());
        cache.insert(cache.epoch().unwrap_or_default(), q.clone(), false);
        tokio::time::sleep(LATE_COMMIT.iter().sum::<std::time::Duration>() * 2).await;
        assert!(cache.get(q.id).is_some(), "kept after a finished change");
    }

    #[test]
    fn off_keeps_nothing() {
        let cache = PostCache::new(false);
        let p = post("x");
        assert_eq!(cache.epoch(), None);
        cache.insert(0, p.clone(), false);
        assert!(cache.get(p.id).is_none());
    }

    #[test]
    fn memory_stays_within_its_bound() {
        let cache = PostCache::new(true);
        let caption = "x".repeat(2_000);
        for _ in 0..(MAX_BYTES / 2_000) * 2 {
            cache.insert(0, post(&caption), false);
        }
        let held: usize = cache.shards.iter().map(|s| lock(s).bytes).sum();
        let counted: usize = cache
            .shards
            .iter()
            .map(|s| lock(s).posts.values().map(|p| p.cost()).sum::<usize>())
            .sum();
        assert_eq!(held, counted);
        assert!(held <= MAX_BYTES, "{held} bytes held");
        assert!(held > MAX_BYTES / 2, "only {held} bytes held");
    }
}
