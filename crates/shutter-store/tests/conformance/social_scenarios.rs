//! What every `SocialRepo` adapter must do: follows with exact counters, likes counted by
//! recount, fan-out in batches, and hybrid home feeds checked page by page against a model.
//! Each scenario gets a fresh, migrated database.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::future::join_all;
use shutter_app::ports::{FanoutStep, NewPost, NewUser, PublishOutcome, RepoError, SocialRepo};
use shutter_core::domain::{PostStatus, Role, Tier};
use shutter_core::model::{PostRecord, User, UserSummary};
use shutter_core::{Cursor, Id, Page, PageRequest, Timestamp};

use crate::backends::TestDb;
use crate::scenarios::{at, early_id, user};

/// Big enough that no scenario reaches it unless it means to.
const NO_THRESHOLD: u64 = 1_000_000;

async fn post(db: &TestDb, author: &User, ms: i64, status: PostStatus) -> PostRecord {
    db.repo()
        .create_post(NewPost {
            id: Id::new(),
            author_id: author.id,
            caption: format!("{} at {ms}", author.username),
            status,
            created_at: at(ms),
        })
        .await
        .expect("post created")
}

async fn reload(db: &TestDb, user: &User) -> User {
    db.repo()
        .user_by_id(user.id)
        .await
        .unwrap()
        .expect("user exists")
}

async fn counts(db: &TestDb, user: &User) -> (i64, i64) {
    let user = reload(db, user).await;
    (user.followers_count, user.following_count)
}

async fn like_count(db: &TestDb, post: Id) -> i64 {
    db.repo()
        .post_by_id(post, None)
        .await
        .unwrap()
        .expect("post exists")
        .like_count
}

/// Runs the fan-out of `post` to its end, `batch` followers at a time; the steps taken.
async fn fan_out(social: &dyn SocialRepo, post: Id, batch: u32, threshold: u64) -> Vec<FanoutStep> {
    let mut steps = Vec::new();
    let mut after = None;
    loop {
        let step = social
            .fanout_batch(post, after, batch, threshold)
            .await
            .unwrap();
        steps.push(step);
        match step {
            FanoutStep::More { last_follower, .. } => after = Some(last_follower),
            FanoutStep::Done { .. } | FanoutStep::Skipped => return steps,
        }
        assert!(steps.len() < 10_000, "fan-out does not end");
    }
}

/// Every item of a listing, page by page.
async fn all_pages<T, F, Fut>(limit: u32, mut read: F, key: impl Fn(&T) -> Cursor) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut items = Vec::new();
    let mut after = None;
    for _ in 0..1_000 {
        let page = read(PageRequest { limit, after }).await;
        assert!(page.items.len() <= limit as usize);
        let next = page.next_cursor;
        if let Some(cursor) = next {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "only a full page has a next"
            );
            assert_eq!(Some(cursor), page.items.last().map(&key));
        }
        items.extend(page.items);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return items,
        }
    }
    panic!("paging does not end");
}

async fn feed_ids(social: &dyn SocialRepo, reader: Id, limit: u32) -> Vec<Id> {
    all_pages(
        limit,
        |page| async move { social.feed(reader, page).await.unwrap() },
        PostRecord::cursor,
    )
    .await
    .iter()
    .map(|p| p.id)
    .collect()
}

async fn entries_of(db: &TestDb, reader: &User) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) FROM feed_entries WHERE user_id = '{}'",
        reader.id
    ))
    .await
}

fn ids(users: &[UserSummary]) -> Vec<Id> {
    users.iter().map(|u| u.id).collect()
}

pub async fn follows_are_idempotent_with_exact_counters(db: &TestDb) {
    let social = db.social();
    let (ann, bob, cid) = (
        user(db.repo(), "ann").await,
        user(db.repo(), "bob").await,
        user(db.repo(), "cid").await,
    );

    assert!(social.follow(ann.id, bob.id, at(1), 10).await.unwrap());
    assert!(!social.follow(ann.id, bob.id, at(2), 10).await.unwrap());
    assert!(social.follow(cid.id, bob.id, at(3), 10).await.unwrap());
    assert!(social.follow(bob.id, ann.id, at(4), 10).await.unwrap());
    assert_eq!(counts(db, &ann).await, (1, 1));
    assert_eq!(counts(db, &bob).await, (2, 1));
    assert_eq!(counts(db, &cid).await, (0, 1));

    assert!(social.unfollow(ann.id, bob.id).await.unwrap());
    assert!(!social.unfollow(ann.id, bob.id).await.unwrap());
    assert!(!social.unfollow(ann.id, cid.id).await.unwrap());
    assert_eq!(counts(db, &ann).await, (1, 0));
    assert_eq!(counts(db, &bob).await, (1, 1));

    // Following again after an unfollow counts again, with the new follow's time.
    assert!(social.follow(ann.id, bob.id, at(50), 10).await.unwrap());
    assert_eq!(counts(db, &bob).await, (2, 1));
    let page = social
        .followers(bob.id, PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(ids(&page.items), vec![ann.id]);
    assert_eq!(page.next_cursor, Some(Cursor::new(at(50), ann.id)));

    // Oneself and absent users.
    assert!(matches!(
        social.follow(ann.id, ann.id, at(5), 10).await,
        Err(RepoError::Conflict(_))
    ));
    assert!(!social.unfollow(ann.id, ann.id).await.unwrap());
    for (follower, followee) in [(ann.id, Id::new()), (Id::new(), ann.id)] {
        match social.follow(follower, followee, at(6), 10).await {
            Err(RepoError::Conflict(rule)) => assert_eq!(rule, "missing_reference"),
            other => panic!("following with an absent user: {other:?}"),
        }
        assert!(!social.unfollow(follower, followee).await.unwrap());
    }
    assert_eq!(counts(db, &ann).await, (1, 1));
    assert_eq!(db.count("SELECT COUNT(*) FROM follows").await, 3);
}

pub async fn racing_follows_keep_counters_exact(db: &TestDb) {
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(user(db.repo(), &format!("racer{i}")).await);
    }
    // Pairs following each other both ways at once, over and over: locked in one order,
    // `A → B` and `B → A` never deadlock, and the counters come out exact.
    for round in 0..6 {
        let mut tasks = Vec::new();
        for pair in users.chunks(2) {
            for (a, b) in [(pair[0].id, pair[1].id), (pair[1].id, pair[0].id)] {
                let social = db.shared_social();
                tasks.push(tokio::spawn(async move {
                    if round % 2 == 0 {
                        social.follow(a, b, at(round), 5).await
                    } else {
                        social.unfollow(a, b).await
                    }
                }));
            }
        }
        for outcome in join_all(tasks).await {
            assert!(
                outcome.unwrap().unwrap(),
                "every follow and unfollow took effect"
            );
        }
        let want = if round % 2 == 0 { (1, 1) } else { (0, 0) };
        for u in &users {
            assert_eq!(counts(db, u).await, want, "round {round}");
        }
    }

    // Everyone follows one user at once, twice each: one follow each counts.
    let star = user(db.repo(), "star").await;
    let mut tasks = Vec::new();
    for u in users.iter().chain(users.iter()) {
        let (social, id, star) = (db.shared_social(), u.id, star.id);
        tasks.push(tokio::spawn(async move {
            social.follow(id, star, at(100), 5).await
        }));
    }
    let took: usize = join_all(tasks)
        .await
        .into_iter()
        .map(|outcome| usize::from(outcome.unwrap().unwrap()))
        .sum();
    assert_eq!(took, users.len());
    assert_eq!(counts(db, &star).await, (users.len() as i64, 0));
    for u in &users {
        assert_eq!(counts(db, u).await, (0, 1));
    }

    // And all unfollow at once, while the star follows some back.
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (social, id, star) = (db.shared_social(), u.id, star.id);
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                social.follow(star, id, at(200), 5).await.unwrap();
            }
            social.unfollow(id, star).await
        }));
    }
    for outcome in join_all(tasks).await {
        assert!(outcome.unwrap().unwrap());
    }
    assert_eq!(counts(db, &star).await, (0, 4));
    let followed_back = users
        .iter()
        .step_by(3)
        .map(|u| u.id)
        .collect::<HashSet<_>>();
    for u in &users {
        let want = i64::from(followed_back.contains(&u.id));
        assert_eq!(counts(db, u).await, (want, 0));
    }
    // The counters agree with the rows.
    for u in users.iter().chain([&star]) {
        let (followers, following) = counts(db, u).await;
        let id = u.id;
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM follows WHERE followee_id = '{id}'"
            ))
            .await,
            followers
        );
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM follows WHERE follower_id = '{id}'"
            ))
            .await,
            following
        );
    }
}

pub async fn followers_and_following_are_paged_newest_first(db: &TestDb) {
    let social = db.social();
    let hub = user(db.repo(), "hub").await;
    let mut fans = Vec::new();
    for i in 0..8 {
        fans.push(user(db.repo(), &format!("fan{i}")).await);
    }
    // Two follows to a millisecond, so pages end inside runs of equal times.
    let mut expected: Vec<(Timestamp, Id)> = Vec::new();
    for (i, fan) in fans.iter().enumerate() {
        let when = at((i as i64 / 2) * 10);
        social.follow(fan.id, hub.id, when, 0).await.unwrap();
        social.follow(hub.id, fan.id, when, 0).await.unwrap();
        expected.push((when, fan.id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<Id> = expected.into_iter().map(|(_, id)| id).collect();

    for limit in [1, 3, 8, 20] {
        // Followers with their follow times, to check each cursor names the follow.
        let followers = all_pages(
            limit,
            |page| async move { social.followers(hub.id, page).await.unwrap() },
            |u: &UserSummary| {
                let i = fans.iter().position(|f| f.id == u.id).unwrap();
                Cursor::new(at((i as i64 / 2) * 10), u.id)
            },
        )
        .await;
        assert_eq!(ids(&followers), expected, "followers, pages of {limit}");
        let following = all_pages(
            limit,
            |page| async move { social.following(hub.id, page).await.unwrap() },
            |u: &UserSummary| {
                let i = fans.iter().position(|f| f.id == u.id).unwrap();
                Cursor::new(at((i as i64 / 2) * 10), u.id)
            },
        )
        .await;
        assert_eq!(ids(&following), expected, "following, pages of {limit}");
    }
    let first = social
        .followers(hub.id, PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(first.items[0], fans[7].summary());
    let of_fan = social
        .following(fans[0].id, PageRequest::first(5))
        .await
        .unwrap();
    assert_eq!(of_fan.items, vec![hub.summary()]);
    assert!(of_fan.next_cursor.is_none());

    // Paging is stable while follows arrive: newer ones and ones at the cursor's millisecond
    // that sort before it do not show on later pages.
    let page = social
        .followers(hub.id, PageRequest::first(3))
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    let late = user(db.repo(), "late").await;
    social.follow(late.id, hub.id, at(1_000), 0).await.unwrap();
    let rest = social
        .followers(
            hub.id,
            PageRequest {
                limit: 20,
                after: Some(cursor),
            },
        )
        .await
        .unwrap();
    let mut seen = ids(&page.items);
    seen.extend(ids(&rest.items));
    assert_eq!(seen, expected);

    // Unfollowed users leave the lists.
    social.unfollow(fans[7].id, hub.id).await.unwrap();
    let now = social
        .followers(hub.id, PageRequest::first(20))
        .await
        .unwrap();
    assert_eq!(now.items.len(), 8);
    assert!(!ids(&now.items).contains(&fans[7].id));
    assert!(social
        .followers(Id::new(), PageRequest::first(5))
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn follows_backfill_fanned_out_posts(db: &TestDb) {
    let social = db.social();
    let (amy, ben, cal) = (
        user(db.repo(), "amy").await,
        user(db.repo(), "ben").await,
        user(db.repo(), "cal").await,
    );
    // Amy: four fanned-out posts, one published but not fanned out yet, one pending.
    let mut fanned = Vec::new();
    for ms in [10, 20, 30, 40] {
        let p = post(db, &amy, ms, PostStatus::Published).await;
        assert!(matches!(
            fan_out(social, p.id, 10, NO_THRESHOLD).await.as_slice(),
            [FanoutStep::Done { rows: 0 }]
        ));
        fanned.push(p.id);
    }
    let fresh = post(db, &amy, 50, PostStatus::Published).await;
    let pending = post(db, &amy, 60, PostStatus::Pending).await;

    // Ben's follow brings the two newest fanned-out posts; the fresh one is pulled.
    social.follow(ben.id, amy.id, at(100), 2).await.unwrap();
    assert_eq!(entries_of(db, &ben).await, 2);
    let stored = db
        .count(&format!(
            "SELECT COUNT(*) FROM feed_entries WHERE user_id = '{}' AND post_id IN ('{}', '{}') \
             AND author_id = '{}'",
            ben.id, fanned[3], fanned[2], amy.id
        ))
        .await;
    assert_eq!(stored, 2);
    assert_eq!(
        feed_ids(social, ben.id, 10).await,
        vec![fresh.id, fanned[3], fanned[2]]
    );

    // A follow without backfill writes nothing; a repeated follow backfills nothing more.
    social.follow(cal.id, amy.id, at(110), 0).await.unwrap();
    assert_eq!(entries_of(db, &cal).await, 0);
    assert_eq!(feed_ids(social, cal.id, 10).await, vec![fresh.id]);
    social.follow(ben.id, amy.id, at(120), 100).await.unwrap();
    assert_eq!(entries_of(db, &ben).await, 2);

    // A generous backfill brings every fanned-out post and nothing unpublished.
    social.unfollow(cal.id, amy.id).await.unwrap();
    social.follow(cal.id, amy.id, at(130), 100).await.unwrap();
    assert_eq!(entries_of(db, &cal).await, 4);
    let mut want = vec![fresh.id];
    want.extend(fanned.iter().rev());
    assert_eq!(feed_ids(social, cal.id, 2).await, want);
    assert!(!feed_ids(social, cal.id, 10).await.contains(&pending.id));
}

pub async fn unfollows_remove_feed_entries(db: &TestDb) {
    let social = db.social();
    let (dee, eli, fay) = (
        user(db.repo(), "dee").await,
        user(db.repo(), "eli").await,
        user(db.repo(), "fay").await,
    );
    social.follow(dee.id, eli.id, at(0), 10).await.unwrap();
    social.follow(dee.id, fay.id, at(0), 10).await.unwrap();
    let mut eli_posts = Vec::new();
    for ms in [10, 20, 30] {
        let p = post(db, &eli, ms, PostStatus::Published).await;
        fan_out(social, p.id, 1, NO_THRESHOLD).await;
        eli_posts.push(p.id);
    }
    let fay_post = post(db, &fay, 15, PostStatus::Published).await;
    fan_out(social, fay_post.id, 1, NO_THRESHOLD).await;
    // One more of Eli's, not fanned out yet: pulled.
    let pulled = post(db, &eli, 40, PostStatus::Published).await;
    assert_eq!(entries_of(db, &dee).await, 4);
    assert_eq!(feed_ids(social, dee.id, 10).await.len(), 5);

    assert!(social.unfollow(dee.id, eli.id).await.unwrap());
    assert_eq!(entries_of(db, &dee).await, 1);
    assert_eq!(feed_ids(social, dee.id, 10).await, vec![fay_post.id]);
    // Finishing the pulled post's fan-out now writes nothing for Dee.
    fan_out(social, pulled.id, 1, NO_THRESHOLD).await;
    assert_eq!(entries_of(db, &dee).await, 1);
    // Other readers keep theirs.
    social.follow(fay.id, eli.id, at(50), 10).await.unwrap();
    assert_eq!(feed_ids(social, fay.id, 10).await.len(), 5);
}

pub async fn likes_are_idempotent_and_counted_by_recount(db: &TestDb) {
    let social = db.social();
    let (gus, hal, ida) = (
        user(db.repo(), "gus").await,
        user(db.repo(), "hal").await,
        user(db.repo(), "ida").await,
    );
    let p = post(db, &gus, 10, PostStatus::Published).await;
    let q = post(db, &gus, 20, PostStatus::Published).await;

    assert!(social.like(p.id, hal.id, at(30)).await.unwrap());
    assert!(!social.like(p.id, hal.id, at(31)).await.unwrap());
    assert!(social.like(p.id, ida.id, at(32)).await.unwrap());
    assert!(social.like(q.id, ida.id, at(33)).await.unwrap());
    // Likes do not touch the counter ...
    assert_eq!(like_count(db, p.id).await, 0);
    // ... but `liked_by_me` sees them at once.
    let seen = db
        .repo()
        .post_by_id(p.id, Some(hal.id))
        .await
        .unwrap()
        .unwrap();
    assert!(seen.liked_by_me);

    // A recount makes it exact (duplicates and unknown ids are fine).
    social
        .recount_likes(&[p.id, p.id, Id::new()])
        .await
        .unwrap();
    assert_eq!(like_count(db, p.id).await, 2);
    assert_eq!(like_count(db, q.id).await, 0, "only the posts named");
    social.recount_likes(&[]).await.unwrap();

    assert!(social.unlike(p.id, hal.id).await.unwrap());
    assert!(!social.unlike(p.id, hal.id).await.unwrap());
    assert!(!social.unlike(Id::new(), hal.id).await.unwrap());
    assert_eq!(like_count(db, p.id).await, 2);
    social.recount_likes(&[q.id, p.id]).await.unwrap();
    assert_eq!(
        (like_count(db, p.id).await, like_count(db, q.id).await),
        (1, 1)
    );

    for (post_id, user_id) in [(Id::new(), hal.id), (p.id, Id::new())] {
        match social.like(post_id, user_id, at(40)).await {
            Err(RepoError::Conflict(rule)) => assert_eq!(rule, "missing_reference"),
            other => panic!("liking with an absent post or user: {other:?}"),
        }
    }

    // Deleting a liker leaves the counter exact even for likes not yet recounted.
    assert!(social.like(q.id, hal.id, at(50)).await.unwrap());
    assert!(db.repo().delete_user(ida.id).await.unwrap());
    assert_eq!(
        (like_count(db, p.id).await, like_count(db, q.id).await),
        (0, 1)
    );
}

pub async fn racing_likes_are_all_counted(db: &TestDb) {
    let owner = user(db.repo(), "popular").await;
    let p = post(db, &owner, 10, PostStatus::Published).await;
    let mut fans = Vec::new();
    for i in 0..50 {
        fans.push(user(db.repo(), &format!("liker{i}")).await.id);
    }
    let mut tasks = Vec::new();
    for (i, fan) in fans.iter().copied().enumerate() {
        let (social, post_id) = (db.shared_social(), p.id);
        tasks.push(tokio::spawn(async move {
            let first = social.like(post_id, fan, at(20 + i as i64)).await.unwrap();
            // Some like twice, and some recount meanwhile.
            let again = social.like(post_id, fan, at(100)).await.unwrap();
            if i % 10 == 0 {
                social.recount_likes(&[post_id]).await.unwrap();
            }
            (first, again)
        }));
    }
    for outcome in join_all(tasks).await {
        assert_eq!(outcome.unwrap(), (true, false));
    }
    db.social().recount_likes(&[p.id]).await.unwrap();
    assert_eq!(like_count(db, p.id).await, 50);
}

pub async fn likers_are_paged_newest_first(db: &TestDb) {
    let social = db.social();
    let owner = user(db.repo(), "jon").await;
    let p = post(db, &owner, 10, PostStatus::Published).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let fan = user(db.repo(), &format!("fan{i}")).await;
        let when = at(100 + (i / 3) * 10);
        social.like(p.id, fan.id, when).await.unwrap();
        expected.push((when, fan.id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    for limit in [1, 2, 3, 7, 10] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = social
                .likers(p.id, PageRequest { limit, after })
                .await
                .unwrap();
            let start = seen.len();
            seen.extend(ids(&page.items));
            let Some(cursor) = page.next_cursor else {
                break;
            };
            // The cursor names the last like: its time and its user.
            assert_eq!(
                cursor,
                Cursor::new(expected[seen.len() - 1].0, seen[seen.len() - 1])
            );
            assert!(seen.len() > start);
            after = Some(cursor);
        }
        let want: Vec<Id> = expected.iter().map(|(_, id)| *id).collect();
        assert_eq!(seen, want, "pages of {limit}");
    }
    let page = social.likers(p.id, PageRequest::first(1)).await.unwrap();
    assert_eq!(page.items[0].username, "fan6");
    assert_eq!(page.items[0].display_name, "fan6 display");
    assert!(social
        .likers(Id::new(), PageRequest::first(5))
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn fanout_goes_in_batches_and_is_idempotent(db: &TestDb) {
    let social = db.social();
    let author = user(db.repo(), "kim").await;
    let mut fans = Vec::new();
    for i in 0..5 {
        let fan = user(db.repo(), &format!("kfan{i}")).await;
        social.follow(fan.id, author.id, at(0), 10).await.unwrap();
        fans.push(fan);
    }
    fans.sort_by_key(|f| f.id);
    let p = post(db, &author, 1_000, PostStatus::Published).await;

    let first = social.fanout_batch(p.id, None, 2, 10).await.unwrap();
    assert_eq!(
        first,
        FanoutStep::More {
            last_follower: fans[1].id,
            rows: 2
        }
    );
    // A repeated step (a job that lost its lease) writes nothing twice.
    let again = social.fanout_batch(p.id, None, 2, 10).await.unwrap();
    assert_eq!(
        again,
        FanoutStep::More {
            last_follower: fans[1].id,
            rows: 0
        }
    );
    let second = social
        .fanout_batch(p.id, Some(fans[1].id), 2, 10)
        .await
        .unwrap();
    assert_eq!(
        second,
        FanoutStep::More {
            last_follower: fans[3].id,
            rows: 2
        }
    );

    // A follower who arrives meanwhile, sorting before the batches already done, is caught
    // up by the last batch (its follow's backfill skipped the post: not fanned out yet).
    let early = social_user(db, early_id(1), "early").await;
    social
        .follow(early.id, author.id, at(1_500), 10)
        .await
        .unwrap();
    assert_eq!(entries_of(db, &early).await, 0);
    assert_eq!(
        feed_ids(social, early.id, 5).await,
        vec![p.id],
        "pulled meanwhile"
    );

    let last = social
        .fanout_batch(p.id, Some(fans[3].id), 2, 10)
        .await
        .unwrap();
    assert_eq!(last, FanoutStep::Done { rows: 2 });
    assert_eq!(entries_of(db, &early).await, 1);
    for fan in &fans {
        assert_eq!(entries_of(db, fan).await, 1);
        assert_eq!(feed_ids(social, fan.id, 5).await, vec![p.id]);
    }
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM feed_entries WHERE post_id = '{}'",
            p.id
        ))
        .await,
        6
    );
    // Done once: every later step is skipped, wherever it starts.
    for after in [None, Some(fans[3].id)] {
        assert_eq!(
            social.fanout_batch(p.id, after, 2, 10).await.unwrap(),
            FanoutStep::Skipped
        );
    }

    // Exactly a batch left: one more (empty) step finishes.
    let q = post(db, &author, 2_000, PostStatus::Published).await;
    let steps = fan_out(social, q.id, 3, 10).await;
    assert_eq!(
        steps,
        vec![
            FanoutStep::More {
                last_follower: fans[1].id,
                rows: 3
            },
            FanoutStep::More {
                last_follower: fans[4].id,
                rows: 3
            },
            FanoutStep::Done { rows: 0 },
        ]
    );
    // A batch of 0 counts as 1.
    let r = post(db, &author, 3_000, PostStatus::Published).await;
    assert!(matches!(
        social.fanout_batch(r.id, None, 0, 10).await.unwrap(),
        FanoutStep::More { rows: 1, .. }
    ));

    // Skipped: missing, not published, or an author at or over the threshold.
    assert_eq!(
        social.fanout_batch(Id::new(), None, 2, 10).await.unwrap(),
        FanoutStep::Skipped
    );
    let pending = post(db, &author, 4_000, PostStatus::Pending).await;
    assert_eq!(
        social.fanout_batch(pending.id, None, 2, 10).await.unwrap(),
        FanoutStep::Skipped
    );
    let failed = post(db, &author, 4_100, PostStatus::Failed).await;
    assert_eq!(
        social.fanout_batch(failed.id, None, 2, 10).await.unwrap(),
        FanoutStep::Skipped
    );
    let big = post(db, &author, 5_000, PostStatus::Published).await;
    assert_eq!(
        social.fanout_batch(big.id, None, 2, 6).await.unwrap(),
        FanoutStep::Skipped,
        "six followers, threshold six"
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM feed_entries WHERE post_id = '{}'",
            big.id
        ))
        .await,
        0
    );
    // Pulled instead, and fanned out later if the author drops below the threshold.
    assert!(feed_ids(social, fans[0].id, 10).await.contains(&big.id));
    social.unfollow(fans[0].id, author.id).await.unwrap();
    assert!(matches!(
        fan_out(social, big.id, 2, 6).await.last(),
        Some(FanoutStep::Done { .. })
    ));
    assert!(!feed_ids(social, fans[0].id, 10).await.contains(&big.id));
    assert!(feed_ids(social, fans[1].id, 10).await.contains(&big.id));

    // An author without followers is done at once.
    let loner = user(db.repo(), "loner").await;
    let alone = post(db, &loner, 6_000, PostStatus::Published).await;
    assert_eq!(
        fan_out(social, alone.id, 2, 10).await,
        vec![FanoutStep::Done { rows: 0 }]
    );
}

/// A user with a chosen id (to sort before the others).
async fn social_user(db: &TestDb, id: Id, username: &str) -> User {
    db.repo()
        .create_user(NewUser {
            id,
            username: username.to_owned(),
            display_name: format!("{username} display"),
            password_hash: None,
            external: None,
            tier: Tier::Basic,
            role: Role::User,
            created_at: at(0),
        })
        .await
        .expect("user created")
}

pub async fn feeds_hold_only_published_posts_and_lose_deleted_ones(db: &TestDb) {
    let social = db.social();
    let (lea, max, ned) = (
        user(db.repo(), "lea").await,
        user(db.repo(), "max").await,
        user(db.repo(), "ned").await,
    );
    social.follow(lea.id, max.id, at(0), 10).await.unwrap();
    let pushed = post(db, &max, 10, PostStatus::Published).await;
    fan_out(social, pushed.id, 10, NO_THRESHOLD).await;
    let pulled = post(db, &max, 20, PostStatus::Published).await;
    let own = post(db, &lea, 30, PostStatus::Published).await;
    let own_pending = post(db, &lea, 40, PostStatus::Pending).await;
    let pending = post(db, &max, 50, PostStatus::Pending).await;
    let failed = post(db, &max, 55, PostStatus::Failed).await;
    let stranger = post(db, &ned, 60, PostStatus::Published).await;
    assert_eq!(
        feed_ids(social, lea.id, 10).await,
        vec![own.id, pulled.id, pushed.id]
    );
    for hidden in [own_pending.id, pending.id, failed.id, stranger.id] {
        assert_eq!(
            social
                .fanout_batch(hidden, None, 10, NO_THRESHOLD)
                .await
                .unwrap(),
            if hidden == stranger.id {
                FanoutStep::Done { rows: 0 }
            } else {
                FanoutStep::Skipped
            }
        );
    }

    // A pending post shows once published, where its creation time puts it.
    assert!(matches!(
        db.media()
            .publish_post_if_ready(pending.id, at(70))
            .await
            .unwrap(),
        PublishOutcome::Published(_)
    ));
    assert_eq!(
        feed_ids(social, lea.id, 10).await,
        vec![pending.id, own.id, pulled.id, pushed.id]
    );

    // `liked_by_me` is the reader's.
    social.like(pulled.id, lea.id, at(80)).await.unwrap();
    social.like(pushed.id, max.id, at(80)).await.unwrap();
    let page = social.feed(lea.id, PageRequest::first(10)).await.unwrap();
    let liked: Vec<bool> = page.items.iter().map(|p| p.liked_by_me).collect();
    assert_eq!(liked, vec![false, false, true, false]);
    assert_eq!(page.items[3].author, max.summary());
    assert_eq!(page.items[3].caption, pushed.caption);

    // The same page as keys, for a reader that holds the posts themselves, and the posts
    // read alone, without a viewer.
    let full = social.feed(lea.id, PageRequest::first(3)).await.unwrap();
    let keys = social
        .feed_keys(lea.id, PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(
        keys.items
            .iter()
            .map(|k| (k.id, k.created_at, k.liked_by_me))
            .collect::<Vec<_>>(),
        full.items
            .iter()
            .map(|p| (p.id, p.created_at, p.liked_by_me))
            .collect::<Vec<_>>()
    );
    assert!(keys.next_cursor.is_some());
    assert_eq!(keys.next_cursor, full.next_cursor);
    let mut read = db
        .repo()
        .published_posts(&[pulled.id, own_pending.id, failed.id, stranger.id, Id::new()])
        .await
        .unwrap();
    read.sort_by_key(|p| p.id);
    let mut want = Vec::new();
    for id in [pulled.id, stranger.id] {
        want.push(db.repo().post_by_id(id, None).await.unwrap().expect("post"));
    }
    want.sort_by_key(|p| p.id);
    assert_eq!(read, want);
    assert!(read.iter().all(|p| !p.liked_by_me), "no viewer, no like");
    assert_eq!(
        social
            .liked_among(lea.id, &[pulled.id, pushed.id, own.id])
            .await
            .unwrap(),
        vec![pulled.id]
    );
    assert!(social.liked_among(lea.id, &[]).await.unwrap().is_empty());

    // Deleted posts vanish, pushed or pulled or own, and their entries with them.
    for gone in [pushed.id, pulled.id, own.id] {
        assert!(db.repo().delete_post(gone).await.unwrap());
        assert!(!feed_ids(social, lea.id, 10).await.contains(&gone));
    }
    assert_eq!(feed_ids(social, lea.id, 10).await, vec![pending.id]);
    assert_eq!(db.count("SELECT COUNT(*) FROM feed_entries").await, 0);
    // Nobody's feed: empty, no cursor.
    let empty = social
        .feed(Id::new(), PageRequest::first(10))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

pub async fn explore_lists_everyones_published_posts(db: &TestDb) {
    let social = db.social();
    let (ora, pam) = (user(db.repo(), "ora").await, user(db.repo(), "pam").await);
    let mut want = Vec::new();
    for i in 0..9 {
        let author = if i % 2 == 0 { &ora } else { &pam };
        // Three to a millisecond.
        want.push(post(db, author, (i / 3) * 10, PostStatus::Published).await);
    }
    post(db, &ora, 100, PostStatus::Pending).await;
    post(db, &pam, 110, PostStatus::Failed).await;
    want.sort_by_key(|p| std::cmp::Reverse((p.created_at, p.id)));
    let want: Vec<Id> = want.iter().map(|p| p.id).collect();
    for limit in [1, 2, 4, 9, 50] {
        let seen = all_pages(
            limit,
            |page| async move { social.explore(None, page).await.unwrap() },
            PostRecord::cursor,
        )
        .await;
        assert_eq!(seen.iter().map(|p| p.id).collect::<Vec<_>>(), want);
    }
    social.like(want[0], pam.id, at(200)).await.unwrap();
    let as_pam = social
        .explore(Some(pam.id), PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(
        as_pam
            .items
            .iter()
            .map(|p| p.liked_by_me)
            .collect::<Vec<_>>(),
        vec![true, false]
    );
    let anonymous = social.explore(None, PageRequest::first(1)).await.unwrap();
    assert!(!anonymous.items[0].liked_by_me);
}

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// What the feed of one reader must show, kept beside the database.
#[derive(Default)]
struct FeedModel {
    /// Every post by id: author, time, published.
    posts: BTreeMap<Id, (Id, Timestamp, bool)>,
    /// The authors the reader follows.
    following: BTreeSet<Id>,
    /// Fan-outs still to run: the post and where the next step starts.
    fanouts: BTreeMap<Id, Option<Id>>,
}

impl FeedModel {
    /// The reader's own and followed authors' published posts, newest first.
    fn expected(&self, reader: Id) -> Vec<(Timestamp, Id)> {
        let mut want: Vec<(Timestamp, Id)> = self
            .posts
            .iter()
            .filter(|(_, (author, _, published))| {
                *published && (*author == reader || self.following.contains(author))
            })
            .map(|(id, (_, at, _))| (*at, *id))
            .collect();
        want.sort_by(|a, b| b.cmp(a));
        want
    }
}

/// The users of the feed model scenario.
struct Cast {
    reader: User,
    authors: Vec<User>,
    stranger: User,
    crowd: Vec<User>,
}

/// Interleaves posts by authors whose posts are pushed, authors over the threshold whose
/// posts are pulled, authors crossing it both ways, half-done fan-outs, the reader's own
/// posts, follows, unfollows, publishes and deletes, and reads the whole feed page by page
/// every few steps (with more of the same happening between pages), checking each page
/// against the model: exactly the next items before the cursor, no duplicates, no gaps.
pub async fn feeds_merge_pushed_pulled_and_own_posts(db: &TestDb) {
    const THRESHOLD: u64 = 3;
    const BATCH: u32 = 2;
    let social = db.social();
    let reader = user(db.repo(), "reader").await;
    let mut authors = Vec::new();
    for i in 0..5 {
        authors.push(user(db.repo(), &format!("author{i}")).await);
    }
    let stranger = user(db.repo(), "stranger").await;
    // Others who follow authors, to move them across the threshold; one sorts before
    // everyone, so fan-outs under way have already passed it.
    let mut crowd = vec![social_user(db, early_id(7), "crowd_early").await];
    for i in 0..4 {
        crowd.push(user(db.repo(), &format!("crowd{i}")).await);
    }
    // Author 0 starts big (pulled), author 1 at the edge.
    for c in &crowd[..3] {
        social
            .follow(c.id, authors[0].id, at(0), 100)
            .await
            .unwrap();
    }
    social
        .follow(crowd[3].id, authors[1].id, at(0), 100)
        .await
        .unwrap();

    let cast = Cast {
        reader: reader.clone(),
        authors,
        stranger,
        crowd,
    };
    let reader = &cast.reader;
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut model = FeedModel::default();
    let mut clock: i64 = 1_000;
    let mut reads = 0;
    let mut pages_read = 0;

    async fn act(db: &TestDb, rng: &mut Rng, model: &mut FeedModel, clock: &mut i64, cast: &Cast) {
        let Cast {
            reader,
            authors,
            stranger,
            crowd,
        } = cast;
        let social = db.social();
        // Time moves on, often not at all, so many posts share a millisecond.
        if rng.chance(60) {
            *clock += rng.below(3) as i64;
        }
        let roll = rng.below(100);
        if roll < 35 {
            // A new post, by an author, the reader or a stranger; some pending.
            let by = match rng.below(8) {
                0 | 1 => reader,
                2 => stranger,
                n => &authors[n % authors.len()],
            };
            let published = rng.chance(85);
            let status = if published {
                PostStatus::Published
            } else {
                PostStatus::Pending
            };
            let p = post(db, by, *clock, status).await;
            model.posts.insert(p.id, (by.id, p.created_at, published));
            if published {
                model.fanouts.insert(p.id, None);
            }
        } else if roll < 60 {
            // A step of some fan-out under way, sometimes run twice.
            if model.fanouts.is_empty() {
                return;
            }
            let k = rng.below(model.fanouts.len());
            let (&post_id, &after) = model.fanouts.iter().nth(k).unwrap();
            let step = social
                .fanout_batch(post_id, after, BATCH, THRESHOLD)
                .await
                .unwrap();
            if rng.chance(20) {
                let again = social
                    .fanout_batch(post_id, after, BATCH, THRESHOLD)
                    .await
                    .unwrap();
                match (step, again) {
                    (
                        FanoutStep::More {
                            last_follower: a, ..
                        },
                        FanoutStep::More {
                            last_follower: b,
                            rows,
                        },
                    ) => {
                        assert_eq!((a, rows), (b, 0), "a repeated step writes nothing");
                    }
                    (FanoutStep::More { .. }, other) => panic!("repeated step: {other:?}"),
                    (_, again) => assert_eq!(again, FanoutStep::Skipped),
                }
            }
            match step {
                FanoutStep::More { last_follower, .. } => {
                    model.fanouts.insert(post_id, Some(last_follower));
                }
                FanoutStep::Done { .. } | FanoutStep::Skipped => {
                    model.fanouts.remove(&post_id);
                }
            }
        } else if roll < 75 {
            // The reader follows or unfollows an author (never the stranger).
            let a = &authors[rng.below(authors.len())];
            if model.following.remove(&a.id) {
                assert!(social.unfollow(reader.id, a.id).await.unwrap());
            } else {
                assert!(social
                    .follow(reader.id, a.id, at(*clock), 1_000)
                    .await
                    .unwrap());
                model.following.insert(a.id);
            }
        } else if roll < 87 {
            // Someone in the crowd follows or unfollows an author: thresholds are crossed.
            let c = &crowd[rng.below(crowd.len())];
            let a = &authors[rng.below(authors.len())];
            if !social.follow(c.id, a.id, at(*clock), 1_000).await.unwrap() {
                social.unfollow(c.id, a.id).await.unwrap();
            }
        } else if roll < 94 {
            // A pending post is published (its creation time may be long past).
            let pending: Vec<Id> = model
                .posts
                .iter()
                .filter(|(_, (_, _, published))| !published)
                .map(|(id, _)| *id)
                .collect();
            if pending.is_empty() {
                return;
            }
            let id = pending[rng.below(pending.len())];
            assert!(matches!(
                db.media()
                    .publish_post_if_ready(id, at(*clock))
                    .await
                    .unwrap(),
                PublishOutcome::Published(_)
            ));
            model.posts.get_mut(&id).unwrap().2 = true;
            model.fanouts.insert(id, None);
        } else {
            // A post is deleted.
            if model.posts.is_empty() {
                return;
            }
            let k = rng.below(model.posts.len());
            let id = *model.posts.keys().nth(k).unwrap();
            assert!(db.repo().delete_post(id).await.unwrap());
            model.posts.remove(&id);
            model.fanouts.remove(&id);
        }
    }

    for step in 0..400 {
        act(db, &mut rng, &mut model, &mut clock, &cast).await;
        if step % 25 != 24 {
            continue;
        }
        // Read the whole feed, acting between pages.
        reads += 1;
        let limit = 1 + rng.below(5) as u32;
        let mut after: Option<Cursor> = None;
        let mut seen = HashSet::new();
        loop {
            let page = social
                .feed(reader.id, PageRequest { limit, after })
                .await
                .unwrap();
            pages_read += 1;
            let want: Vec<(Timestamp, Id)> = model
                .expected(reader.id)
                .into_iter()
                .filter(|key| after.is_none_or(|c| *key < (c.created_at, c.id)))
                .collect();
            let keys = social
                .feed_keys(reader.id, PageRequest { limit, after })
                .await
                .unwrap();
            assert_eq!(
                keys.items
                    .iter()
                    .map(|k| (k.created_at, k.id, k.liked_by_me))
                    .collect::<Vec<_>>(),
                page.items
                    .iter()
                    .map(|p| (p.created_at, p.id, p.liked_by_me))
                    .collect::<Vec<_>>(),
                "the keys of read {reads}, page after {after:?}"
            );
            assert_eq!(keys.next_cursor, page.next_cursor);
            let got: Vec<(Timestamp, Id)> =
                page.items.iter().map(|p| (p.created_at, p.id)).collect();
            let n = want.len().min(limit as usize);
            assert_eq!(got, want[..n], "read {reads}, page after {after:?}");
            assert_eq!(page.next_cursor.is_some(), want.len() > limit as usize);
            for p in &page.items {
                assert!(seen.insert(p.id), "{} twice", p.id);
                assert_eq!(p.status, PostStatus::Published);
            }
            let Some(cursor) = page.next_cursor else {
                break;
            };
            after = Some(cursor);
            for _ in 0..rng.below(3) {
                act(db, &mut rng, &mut model, &mut clock, &cast).await;
            }
        }
    }
    assert!(
        reads >= 10 && pages_read > reads * 3,
        "the feed was read page by page"
    );
    let have_entries = entries_of(db, reader).await;
    assert!(have_entries > 0, "some posts were pushed");
    let pulled = db
        .count("SELECT COUNT(*) FROM posts WHERE status = 'published' AND NOT fanned_out")
        .await;
    assert!(pulled > 0, "some posts are pulled");

    // Finishing every fan-out changes nothing the reader sees.
    let before = feed_ids(social, reader.id, 7).await;
    for (&post_id, &after) in &model.fanouts {
        let mut after = after;
        while let FanoutStep::More { last_follower, .. } = social
            .fanout_batch(post_id, after, BATCH, THRESHOLD)
            .await
            .unwrap()
        {
            after = Some(last_follower);
        }
    }
    assert_eq!(feed_ids(social, reader.id, 7).await, before);
    let want: Vec<Id> = model
        .expected(reader.id)
        .iter()
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(before, want);
}

pub async fn crossing_the_threshold_keeps_feeds_right(db: &TestDb) {
    const THRESHOLD: u64 = 3;
    let social = db.social();
    let star = user(db.repo(), "star").await;
    let mut fans = Vec::new();
    for i in 0..4 {
        fans.push(user(db.repo(), &format!("sfan{i}")).await);
    }
    social.follow(fans[0].id, star.id, at(0), 10).await.unwrap();
    social.follow(fans[1].id, star.id, at(0), 10).await.unwrap();

    // Two followers: pushed.
    let small = post(db, &star, 10, PostStatus::Published).await;
    assert!(matches!(
        fan_out(social, small.id, 1, THRESHOLD).await.last(),
        Some(FanoutStep::Done { rows: 0 })
    ));
    // Mid-way through the next fan-out the star gets big: the rest is pulled.
    let crossing = post(db, &star, 20, PostStatus::Published).await;
    let step = social
        .fanout_batch(crossing.id, None, 1, THRESHOLD)
        .await
        .unwrap();
    let FanoutStep::More {
        last_follower,
        rows: 1,
    } = step
    else {
        panic!("first step: {step:?}")
    };
    social
        .follow(fans[2].id, star.id, at(25), 10)
        .await
        .unwrap();
    assert_eq!(
        social
            .fanout_batch(crossing.id, Some(last_follower), 1, THRESHOLD)
            .await
            .unwrap(),
        FanoutStep::Skipped
    );
    // Big: pulled.
    let big = post(db, &star, 30, PostStatus::Published).await;
    assert_eq!(
        social
            .fanout_batch(big.id, None, 1, THRESHOLD)
            .await
            .unwrap(),
        FanoutStep::Skipped
    );
    let all = vec![big.id, crossing.id, small.id];
    for fan in &fans[..3] {
        assert_eq!(feed_ids(social, fan.id, 2).await, all, "{}", fan.username);
    }
    // A new follower of the big account: backfill of what was pushed, the rest pulled.
    social
        .follow(fans[3].id, star.id, at(35), 10)
        .await
        .unwrap();
    assert_eq!(entries_of(db, &fans[3]).await, 1);
    assert_eq!(feed_ids(social, fans[3].id, 1).await, all);

    // Small again: new posts are pushed, the old ones stay as they are.
    social.unfollow(fans[2].id, star.id).await.unwrap();
    social.unfollow(fans[3].id, star.id).await.unwrap();
    let small_again = post(db, &star, 40, PostStatus::Published).await;
    assert!(matches!(
        fan_out(social, small_again.id, 1, THRESHOLD).await.last(),
        Some(FanoutStep::Done { .. })
    ));
    let all = vec![small_again.id, big.id, crossing.id, small.id];
    for fan in &fans[..2] {
        assert_eq!(feed_ids(social, fan.id, 3).await, all);
    }
    for fan in &fans[2..] {
        assert!(feed_ids(social, fan.id, 3).await.is_empty());
        assert_eq!(entries_of(db, fan).await, 0);
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM posts WHERE fanned_out")
            .await,
        2,
        "only what was pushed to the end"
    );
}

/// Follows and unfollows racing fan-outs of the same author: when everything is done, each
/// fanned-out post has an entry for exactly its author's followers (none for someone who
/// left, none missing for someone who arrived mid-way).
pub async fn racing_follows_and_fanouts_leave_exact_entries(db: &TestDb) {
    let author = user(db.repo(), "busy").await;
    let mut crowd = Vec::new();
    for i in 0..3 {
        crowd.push(social_user(db, early_id(i), &format!("early{i}")).await.id);
    }
    for i in 0..17 {
        crowd.push(user(db.repo(), &format!("member{i}")).await.id);
    }
    for id in crowd.iter().step_by(2) {
        db.social()
            .follow(*id, author.id, at(0), 100)
            .await
            .unwrap();
    }
    // Long after those follows (so the last batch's catch-up of recent follows does not
    // cover their followers), long before the racing ones.
    let mut posts = Vec::new();
    for i in 0..4 {
        posts.push(
            post(db, &author, 10_000_000 + i, PostStatus::Published)
                .await
                .id,
        );
    }

    let mut tasks = Vec::new();
    for (k, post_id) in posts.iter().copied().enumerate() {
        let social = db.shared_social();
        tasks.push(tokio::spawn(async move {
            // Different batch sizes, so the fan-outs interleave differently.
            fan_out(social.as_ref(), post_id, 2 + k as u32, NO_THRESHOLD).await;
        }));
    }
    for (i, id) in crowd.iter().copied().enumerate() {
        let (social, author) = (db.shared_social(), author.id);
        tasks.push(tokio::spawn(async move {
            for round in 0..3 {
                let when = at(20_000_000 + round);
                if (i + round as usize).is_multiple_of(2) {
                    social.unfollow(id, author).await.unwrap();
                } else {
                    social.follow(id, author, when, 100).await.unwrap();
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in join_all(tasks).await {
        task.unwrap();
    }

    let page = db
        .social()
        .followers(author.id, PageRequest::first(100))
        .await
        .unwrap();
    let followers: BTreeSet<Id> = page.items.iter().map(|u| u.id).collect();
    assert_eq!(counts(db, &author).await.0, followers.len() as i64);
    for post_id in &posts {
        let fanned = db
            .count(&format!(
                "SELECT COUNT(*) FROM posts WHERE id = '{post_id}' AND fanned_out"
            ))
            .await;
        assert_eq!(fanned, 1);
        let mut with_entry = BTreeSet::new();
        for id in &crowd {
            let n = db
                .count(&format!(
                    "SELECT COUNT(*) FROM feed_entries WHERE user_id = '{id}' AND post_id = '{post_id}'"
                ))
                .await;
            if n == 1 {
                with_entry.insert(*id);
            }
        }
        assert_eq!(with_entry, followers, "entries of {post_id}");
    }
    for id in &crowd {
        let want: Vec<Id> = if followers.contains(id) {
            posts.iter().rev().copied().collect()
        } else {
            Vec::new()
        };
        assert_eq!(feed_ids(db.social(), *id, 3).await, want);
    }
}
