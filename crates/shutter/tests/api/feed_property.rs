//! Property-style test of the hybrid home feed (SPEC 3, DESIGN "Feed"): a seeded random run of
//! posts, follows, unfollows and post deletions among 8 users (6 of them post) with
//! `feed.fanout_threshold = 3`, so authors move between the push and the pull path. Every few
//! steps, a couple of readers' feeds (read whole in pages of 3) must settle to exactly what a
//! model says: the published posts of their followees and their own, newest first by
//! `(created_at, id)`, no repeats, no gaps; and paging must stay exact while new posts arrive
//! between page reads. Follower counts must match the model at once.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::social_helpers::*;

const SEED: u64 = 0x5EED_F00D_2026_1122;
const STEPS: usize = 200;
const USERS: usize = 8;
/// Users `0..AUTHORS` post; the rest only follow and read.
const AUTHORS: usize = 6;
const CHECK_EVERY: usize = 10;
const PAGE: u32 = 3;

/// xorshift64*: small, deterministic, good enough to pick steps.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct ModelPost {
    id: String,
    created_at: String,
    author: usize,
}

#[derive(Default)]
struct Model {
    /// (follower, followee)
    follows: BTreeSet<(usize, usize)>,
    /// Live published posts.
    posts: Vec<ModelPost>,
}

impl Model {
    fn followers(&self, user: usize) -> usize {
        self.follows.iter().filter(|(_, b)| *b == user).count()
    }

    fn following(&self, user: usize) -> usize {
        self.follows.iter().filter(|(a, _)| *a == user).count()
    }

    fn followees(&self, user: usize) -> Vec<usize> {
        self.follows
            .iter()
            .filter(|(a, _)| *a == user)
            .map(|(_, b)| *b)
            .collect()
    }

    /// The reader's home feed: own and followees' posts, newest first by (created_at, id).
    fn feed(&self, reader: usize) -> Vec<String> {
        let mut posts: Vec<&ModelPost> = self
            .posts
            .iter()
            .filter(|p| p.author == reader || self.follows.contains(&(reader, p.author)))
            .collect();
        posts.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        posts.into_iter().map(|p| p.id.clone()).collect()
    }
}

struct Run {
    app: TestApp,
    users: Vec<Member>,
    model: Model,
    rng: Rng,
    /// Threshold crossings seen (up, down) and posts made on each path, to show the seed
    /// really exercises both paths.
    crossings: (usize, usize),
    posts_by_path: (usize, usize),
}

impl Run {
    fn name(&self, user: usize) -> String {
        self.users[user].user["username"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn post(&mut self, author: usize, caption: &str) {
        if (self.model.followers(author) as u64) < THRESHOLD {
            self.posts_by_path.0 += 1;
        } else {
            self.posts_by_path.1 += 1;
        }
        let post = self
            .app
            .create_post(&self.users[author].token, caption)
            .await;
        assert_eq!(post["status"], "published");
        self.model.posts.push(ModelPost {
            id: id_of(&post),
            created_at: post["created_at"].as_str().expect("created_at").to_owned(),
            author,
        });
    }

    async fn follow(&mut self, a: usize, b: usize) {
        let before = self.model.followers(b) as u64;
        follow(&self.app, &self.users[a], &self.users[b]).await;
        self.model.follows.insert((a, b));
        if before + 1 == THRESHOLD && self.model.followers(b) as u64 == THRESHOLD {
            self.crossings.0 += 1;
        }
    }

    async fn unfollow(&mut self, a: usize, b: usize) {
        let before = self.model.followers(b) as u64;
        unfollow(&self.app, &self.users[a], &self.users[b]).await;
        self.model.follows.remove(&(a, b));
        if before == THRESHOLD && self.model.followers(b) as u64 + 1 == THRESHOLD {
            self.crossings.1 += 1;
        }
    }

    async fn delete_random_post(&mut self) {
        if self.model.posts.is_empty() {
            return;
        }
        let i = self.rng.below(self.model.posts.len());
        let post = self.model.posts.remove(i);
        delete_post(&self.app, &self.users[post.author].token, &post.id).await;
    }

    async fn step(&mut self, step: usize) {
        let roll = self.rng.below(100);
        if roll < 40 {
            let author = self.rng.below(AUTHORS);
            self.post(author, &format!("step {step}")).await;
        } else if roll < 62 {
            let a = self.rng.below(USERS);
            let b = self.rng.below(AUTHORS);
            if a != b {
                // Possibly already following: PUT is idempotent.
                self.follow(a, b).await;
            }
        } else if roll < 78 {
            if !self.model.follows.is_empty() {
                let i = self.rng.below(self.model.follows.len());
                let (a, b) = *self.model.follows.iter().nth(i).expect("in range");
                self.unfollow(a, b).await;
            }
        } else if roll < 82 {
            // Unfollow a random pair, followed or not: DELETE is idempotent.
            let a = self.rng.below(USERS);
            let b = self.rng.below(USERS);
            if a != b {
                self.unfollow(a, b).await;
            }
        } else {
            self.delete_random_post().await;
        }
    }

    /// Counts are exact at once.
    async fn check_counts(&self, step: usize) {
        for (i, user) in self.users.iter().enumerate() {
            let expected = (
                self.model.followers(i) as i64,
                self.model.following(i) as i64,
            );
            assert_eq!(
                counts(&self.app, &user.id()).await,
                expected,
                "(followers, following) of {} after step {step} (seed {SEED:#x})",
                self.name(i)
            );
        }
    }

    /// The reader's feed settles to exactly the model's.
    async fn check_feed(&self, reader: usize, step: usize) {
        let expected = self.model.feed(reader);
        let got = wait_feed(&self.app, &self.users[reader].token, PAGE, &expected).await;
        assert_unique(&got, "the home feed");
        assert_eq!(
            got,
            expected,
            "home feed of {} after step {step} (seed {SEED:#x}); follows {:?}, followers of authors {:?}",
            self.name(reader),
            self.model.followees(reader),
            (0..AUTHORS).map(|a| self.model.followers(a)).collect::<Vec<_>>()
        );
    }

    /// Reads the settled feed page by page while the reader and their followees post between
    /// reads: the pages read are exactly the snapshot taken before.
    async fn check_paging_while_posting(&mut self, reader: usize, step: usize) {
        self.check_feed(reader, step).await;
        let snapshot = self.model.feed(reader);
        let mut sources = self.model.followees(reader);
        sources.push(reader);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for round in 0..1000 {
            let path = match &cursor {
                Some(c) => format!("/v1/feed?limit={PAGE}&cursor={c}"),
                None => format!("/v1/feed?limit={PAGE}"),
            };
            let resp = self.app.get(&path, Some(&self.users[reader].token)).await;
            let page = expect_status(resp, StatusCode::OK).await;
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= PAGE as usize, "{page}");
            seen.extend(ids(items));
            if round < 4 {
                let source = sources[self.rng.below(sources.len())];
                self.post(source, &format!("between pages {round} at step {step}"))
                    .await;
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            snapshot,
            "pages of {}'s feed read while posts arrive, after step {step} (seed {SEED:#x})",
            self.name(reader)
        );
    }
}

#[tokio::test]
async fn the_hybrid_feed_matches_a_model_through_a_random_run() {
    let app = spawn_social_app().await;
    let users = members(&app, "prop", USERS).await;
    let mut run = Run {
        app,
        users,
        model: Model::default(),
        rng: Rng(SEED),
        crossings: (0, 0),
        posts_by_path: (0, 0),
    };
    // Start with one author over the threshold, one at it, and some small ones.
    for (a, b) in [
        (2, 0),
        (3, 0),
        (4, 0),
        (5, 0),
        (3, 1),
        (4, 1),
        (6, 1),
        (0, 2),
        (7, 3),
        (1, 4),
    ] {
        run.follow(a, b).await;
    }
    run.check_counts(0).await;

    let mut checks = 0;
    for step in 1..=STEPS {
        run.step(step).await;
        if step % CHECK_EVERY == 0 {
            checks += 1;
            let first = checks % USERS;
            let second = run.rng.below(USERS);
            run.check_counts(step).await;
            if checks % 3 == 0 {
                run.check_paging_while_posting(first, step).await;
            } else {
                run.check_feed(first, step).await;
            }
            run.check_feed(second, step).await;
        }
    }
    // At the end, everybody's feed.
    for reader in 0..USERS {
        run.check_feed(reader, STEPS).await;
    }
    assert!(
        run.crossings.0 >= 1 && run.crossings.1 >= 1,
        "the run should cross the threshold both ways: {:?}",
        run.crossings
    );
    assert!(
        run.posts_by_path.0 >= 10 && run.posts_by_path.1 >= 10,
        "the run should post on both paths: (push, pull) = {:?}",
        run.posts_by_path
    );
}
