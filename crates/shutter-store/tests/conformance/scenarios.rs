//! What every `Repo` adapter must do. Each scenario gets a fresh, migrated database.

use std::collections::HashSet;

use futures::future::join_all;
use shutter_app::ports::{
    IdempotencyBegin, IdempotencyStart, NewComment, NewPost, NewRefreshToken, NewUser,
    RefreshSuccessor, RefreshUse, Repo, RepoError,
};
use shutter_core::domain::{PostStatus, Role, Tier};
use shutter_core::model::{Comment, PostRecord, User};
use shutter_core::{Cursor, Id, PageRequest, Timestamp};

use crate::backends::TestDb;

/// A fixed "now" so that every timestamp in the scenarios is exact.
pub const T0: i64 = 1_800_000_000_000;

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

pub async fn user(repo: &dyn Repo, username: &str) -> User {
    repo.create_user(NewUser {
        id: Id::new(),
        username: username.to_owned(),
        display_name: format!("{username} display"),
        password_hash: Some(format!("argon2-of-{username}")),
        external: None,
        tier: Tier::Basic,
        role: Role::User,
        created_at: at(0),
    })
    .await
    .expect("user created")
}

async fn post_at(repo: &dyn Repo, author: &User, ms: i64, status: PostStatus) -> PostRecord {
    repo.create_post(NewPost {
        id: Id::new(),
        author_id: author.id,
        caption: format!("caption at {ms}"),
        status,
        created_at: at(ms),
    })
    .await
    .expect("post created")
}

async fn comment_with_id(
    repo: &dyn Repo,
    id: Id,
    post: &PostRecord,
    author: &User,
    ms: i64,
) -> Comment {
    repo.create_comment(NewComment {
        id,
        post_id: post.id,
        author_id: author.id,
        text: format!("comment at {ms}"),
        created_at: at(ms),
    })
    .await
    .expect("comment created")
}

async fn comment_at(repo: &dyn Repo, post: &PostRecord, author: &User, ms: i64) -> Comment {
    comment_with_id(repo, Id::new(), post, author, ms).await
}

async fn reload(repo: &dyn Repo, user: &User) -> User {
    repo.user_by_id(user.id)
        .await
        .unwrap()
        .expect("user exists")
}

async fn reload_post(repo: &dyn Repo, post: &PostRecord) -> PostRecord {
    repo.post_by_id(post.id, None)
        .await
        .unwrap()
        .expect("post exists")
}

/// An id that sorts before every id `Id::new()` makes (UUIDv7 from the year 1970).
pub fn early_id(n: u8) -> Id {
    format!("00000000-0000-7000-8000-0000000000{n:02x}")
        .parse()
        .unwrap()
}

/// Newest first by `(created_at, id)`, as post lists are ordered.
fn newest_first(posts: &mut [PostRecord]) {
    posts.sort_by_key(|p| std::cmp::Reverse((p.created_at, p.id)));
}

pub async fn ping_answers(db: &TestDb) {
    db.repo().ping().await.unwrap();
}

pub async fn users_are_created_and_found(db: &TestDb) {
    let repo = db.repo();
    let alice = user(repo, "alice").await;
    assert_eq!(alice.bio, "");
    assert_eq!(
        (
            alice.followers_count,
            alice.following_count,
            alice.posts_count
        ),
        (0, 0, 0)
    );

    assert_eq!(reload(repo, &alice).await, alice);
    assert_eq!(
        repo.user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        repo.user_by_username("ALICE").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(repo.user_by_username("bob").await.unwrap(), None);
    assert_eq!(repo.user_by_id(Id::new()).await.unwrap(), None);

    assert_eq!(
        repo.password_hash(alice.id).await.unwrap().as_deref(),
        Some("argon2-of-alice")
    );
    assert_eq!(repo.password_hash(Id::new()).await.unwrap(), None);
}

pub async fn duplicate_usernames_conflict(db: &TestDb) {
    let repo = db.repo();
    let first = user(repo, "carol").await;
    let again = repo
        .create_user(NewUser {
            id: Id::new(),
            // Callers lowercase usernames, so "Carol" arrives as "carol".
            username: "Carol".to_lowercase(),
            display_name: "Another Carol".into(),
            password_hash: Some("x".into()),
            external: None,
            tier: Tier::Premium,
            role: Role::User,
            created_at: at(5),
        })
        .await;
    match again {
        Err(RepoError::Conflict(rule)) => assert_eq!(rule, "username"),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    // The first account is untouched.
    assert_eq!(repo.user_by_username("carol").await.unwrap(), Some(first));
}

pub async fn profiles_tiers_and_roles_change(db: &TestDb) {
    let repo = db.repo();
    let dave = user(repo, "dave").await;

    let renamed = repo
        .update_profile(dave.id, Some("Dave D.".into()), None)
        .await
        .unwrap()
        .expect("dave exists");
    assert_eq!(
        (renamed.display_name.as_str(), renamed.bio.as_str()),
        ("Dave D.", "")
    );

    let bio = repo
        .update_profile(dave.id, None, Some("I take photos".into()))
        .await
        .unwrap()
        .expect("dave exists");
    assert_eq!(
        (bio.display_name.as_str(), bio.bio.as_str()),
        ("Dave D.", "I take photos")
    );
    assert_eq!(reload(repo, &dave).await, bio);

    let premium = repo
        .set_tier(dave.id, Tier::Premium)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(premium.tier, Tier::Premium);
    let admin = repo.set_role(dave.id, Role::Admin).await.unwrap().unwrap();
    assert_eq!((admin.tier, admin.role), (Tier::Premium, Role::Admin));
    assert_eq!(reload(repo, &dave).await.role, Role::Admin);

    let nobody = Id::new();
    assert_eq!(
        repo.update_profile(nobody, Some("x".into()), None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(repo.set_tier(nobody, Tier::Premium).await.unwrap(), None);
    assert_eq!(repo.set_role(nobody, Role::Admin).await.unwrap(), None);
}

pub async fn external_identities_are_unique(db: &TestDb) {
    let repo = db.repo();
    let external = |username: &str, issuer: &str, subject: &str| NewUser {
        id: Id::new(),
        username: username.into(),
        display_name: username.into(),
        password_hash: None,
        external: Some((issuer.into(), subject.into())),
        tier: Tier::Basic,
        role: Role::User,
        created_at: at(0),
    };
    let erin = repo
        .create_user(external("erin", "https://idp.example", "sub-1"))
        .await
        .unwrap();
    // The same subject at another issuer is another person.
    let frank = repo
        .create_user(external("frank", "https://other.example", "sub-1"))
        .await
        .unwrap();

    assert_eq!(
        repo.user_by_external("https://idp.example", "sub-1")
            .await
            .unwrap(),
        Some(erin.clone())
    );
    assert_eq!(
        repo.user_by_external("https://other.example", "sub-1")
            .await
            .unwrap(),
        Some(frank)
    );
    assert_eq!(
        repo.user_by_external("https://idp.example", "sub-2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(repo.password_hash(erin.id).await.unwrap(), None);

    match repo
        .create_user(external("erin2", "https://idp.example", "sub-1"))
        .await
    {
        Err(RepoError::Conflict(rule)) => assert_eq!(rule, "external_identity"),
        other => panic!("expected an external identity conflict, got {other:?}"),
    }
    // Password users have no external identity and never collide on it.
    user(repo, "gina").await;
    user(repo, "hank").await;
}

pub async fn deleted_external_identities_are_remembered(db: &TestDb) {
    let repo = db.repo();
    let external = |username: &str, subject: &str| NewUser {
        id: Id::new(),
        username: username.into(),
        display_name: username.into(),
        password_hash: None,
        external: Some(("https://idp.example".into(), subject.into())),
        tier: Tier::Basic,
        role: Role::User,
        created_at: at(0),
    };
    let deleted = |issuer: &'static str, subject: &'static str| async move {
        repo.external_identity_deleted(issuer, subject)
            .await
            .unwrap()
    };
    let ivy = repo.create_user(external("ivy", "sub-ivy")).await.unwrap();
    assert!(!deleted("https://idp.example", "sub-ivy").await);
    assert!(repo.delete_user(ivy.id).await.unwrap());
    assert!(deleted("https://idp.example", "sub-ivy").await);
    assert!(!deleted("https://other.example", "sub-ivy").await);
    assert!(!deleted("https://idp.example", "sub-other").await);
    // The same identity deleted a second time (an account made again by other means).
    let again = repo.create_user(external("ivy2", "sub-ivy")).await.unwrap();
    assert!(repo.delete_user(again.id).await.unwrap());
    assert!(deleted("https://idp.example", "sub-ivy").await);
    // A password user leaves nothing behind.
    let jack = user(repo, "jack").await;
    assert!(repo.delete_user(jack.id).await.unwrap());
}

fn token(hash: &str, user: &User, family: Id, expires_ms: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: hash.into(),
        family_id: family,
        user_id: user.id,
        created_at: at(0),
        expires_at: at(expires_ms),
    }
}

pub async fn refresh_tokens_rotate_and_detect_reuse(db: &TestDb) {
    let repo = db.repo();
    let ivy = user(repo, "ivy").await;
    let family = Id::new();
    repo.insert_refresh_token(token("h1", &ivy, family, 60_000))
        .await
        .unwrap();

    assert_eq!(
        repo.use_refresh_token("h1", at(1_000)).await.unwrap(),
        RefreshUse::Fresh {
            user_id: ivy.id,
            family_id: family,
            expires_at: at(60_000)
        }
    );
    // Rotation: the successor is live, the used one is now a replay.
    repo.insert_refresh_token(token("h2", &ivy, family, 120_000))
        .await
        .unwrap();
    assert_eq!(
        repo.use_refresh_token("h1", at(2_000)).await.unwrap(),
        RefreshUse::Reused { family_id: family }
    );
    assert_eq!(repo.refresh_family_of("h1").await.unwrap(), Some(family));
    assert_eq!(repo.refresh_family_of("nope").await.unwrap(), None);
    assert_eq!(
        repo.use_refresh_token("nope", at(2_000)).await.unwrap(),
        RefreshUse::Unknown
    );

    // Expiry: an unused token past `expires_at` is as good as unknown, and stays unused.
    repo.insert_refresh_token(token("h3", &ivy, Id::new(), 10_000))
        .await
        .unwrap();
    assert_eq!(
        repo.use_refresh_token("h3", at(10_000)).await.unwrap(),
        RefreshUse::Unknown
    );
    assert_eq!(
        repo.use_refresh_token("h3", at(9_999)).await.unwrap(),
        RefreshUse::Fresh {
            user_id: ivy.id,
            family_id: repo.refresh_family_of("h3").await.unwrap().unwrap(),
            expires_at: at(10_000)
        }
    );

    assert!(matches!(
        repo.use_refresh_token("h2", at(3_000)).await.unwrap(),
        RefreshUse::Fresh { .. }
    ));
}

pub async fn refresh_token_families_are_revoked(db: &TestDb) {
    let repo = db.repo();
    let jack = user(repo, "jack").await;
    let (stolen, other) = (Id::new(), Id::new());
    for (hash, family) in [("a1", stolen), ("a2", stolen), ("b1", other)] {
        repo.insert_refresh_token(token(hash, &jack, family, 60_000))
            .await
            .unwrap();
    }
    repo.revoke_refresh_family(stolen).await.unwrap();
    for hash in ["a1", "a2"] {
        assert_eq!(
            repo.use_refresh_token(hash, at(1)).await.unwrap(),
            RefreshUse::Reused { family_id: stolen },
            "{hash} was revoked"
        );
    }
    assert!(matches!(
        repo.use_refresh_token("b1", at(1)).await.unwrap(),
        RefreshUse::Fresh { family_id, .. } if family_id == other
    ));
    assert_eq!(repo.refresh_family_of("a2").await.unwrap(), Some(stolen));
}

pub async fn racing_refresh_token_uses_have_one_winner(db: &TestDb) {
    let repo = db.repo();
    let kim = user(repo, "kim").await;
    for round in 0..5 {
        let hash = format!("race-{round}");
        repo.insert_refresh_token(token(&hash, &kim, Id::new(), 60_000))
            .await
            .unwrap();
        let outcomes = join_all((0..8).map(|_| repo.use_refresh_token(&hash, at(1)))).await;
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(RefreshUse::Fresh { .. })))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(RefreshUse::Reused { .. })))
            .count();
        assert_eq!((fresh, reused), (1, 7), "round {round}: {outcomes:?}");
    }
}

pub async fn posts_are_created_edited_and_deleted(db: &TestDb) {
    let repo = db.repo();
    let lea = user(repo, "lea").await;

    let published = post_at(repo, &lea, 10, PostStatus::Published).await;
    assert_eq!(published.author, lea.summary());
    assert_eq!(published.status, PostStatus::Published);
    assert_eq!((published.like_count, published.comment_count), (0, 0));
    assert!(!published.liked_by_me);
    assert_eq!(
        (published.created_at, published.updated_at),
        (at(10), at(10))
    );
    assert_eq!(reload(repo, &lea).await.posts_count, 1);

    // Only published posts count.
    let pending = post_at(repo, &lea, 20, PostStatus::Pending).await;
    assert_eq!(pending.status, PostStatus::Pending);
    let failed = post_at(repo, &lea, 30, PostStatus::Failed).await;
    assert_eq!(reload(repo, &lea).await.posts_count, 1);
    assert_eq!(
        repo.post_by_id(pending.id, None).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(repo.post_by_id(Id::new(), None).await.unwrap(), None);

    let edited = repo
        .update_post_caption(published.id, "new words".into(), at(500))
        .await
        .unwrap()
        .expect("post exists");
    assert_eq!(edited.caption, "new words");
    assert_eq!((edited.created_at, edited.updated_at), (at(10), at(500)));
    assert_eq!(reload_post(repo, &published).await, edited);
    assert_eq!(
        repo.update_post_caption(Id::new(), "x".into(), at(1))
            .await
            .unwrap(),
        None
    );

    assert!(repo.delete_post(pending.id).await.unwrap());
    assert_eq!(reload(repo, &lea).await.posts_count, 1);
    assert!(repo.delete_post(published.id).await.unwrap());
    assert_eq!(reload(repo, &lea).await.posts_count, 0);
    assert!(!repo.delete_post(published.id).await.unwrap());
    assert_eq!(repo.post_by_id(published.id, None).await.unwrap(), None);
    assert!(repo.delete_post(failed.id).await.unwrap());
    assert_eq!(reload(repo, &lea).await.posts_count, 0);

    // A post needs an existing author.
    let orphan = repo
        .create_post(NewPost {
            id: Id::new(),
            author_id: Id::new(),
            caption: "nobody's".into(),
            status: PostStatus::Published,
            created_at: at(1),
        })
        .await;
    assert!(matches!(orphan, Err(RepoError::Conflict(_))), "{orphan:?}");
}

pub async fn liked_by_me_reads_likes(db: &TestDb) {
    let repo = db.repo();
    let (mia, ned) = (user(repo, "mia").await, user(repo, "ned").await);
    let post = post_at(repo, &mia, 10, PostStatus::Published).await;
    db.exec(&format!(
        "INSERT INTO likes (post_id, user_id, created_at) VALUES ('{}', '{}', {T0})",
        post.id, ned.id
    ))
    .await;

    let seen_by = |viewer| repo.post_by_id(post.id, viewer);
    assert!(seen_by(Some(ned.id)).await.unwrap().unwrap().liked_by_me);
    assert!(!seen_by(Some(mia.id)).await.unwrap().unwrap().liked_by_me);
    assert!(!seen_by(None).await.unwrap().unwrap().liked_by_me);

    let page = repo
        .posts_by_author(mia.id, false, Some(ned.id), PageRequest::first(10))
        .await
        .unwrap();
    assert!(page.items[0].liked_by_me);
    let page = repo
        .posts_by_author(mia.id, false, None, PageRequest::first(10))
        .await
        .unwrap();
    assert!(!page.items[0].liked_by_me);
}

pub async fn post_pages_are_stable_while_posts_arrive(db: &TestDb) {
    let repo = db.repo();
    let olga = user(repo, "olga").await;
    // 22 posts, three to a millisecond, so pages end inside runs of equal timestamps.
    let mut expected = Vec::new();
    for i in 0..22 {
        expected.push(post_at(repo, &olga, (i / 3) * 10, PostStatus::Published).await);
    }
    newest_first(&mut expected);

    let mut seen: Vec<PostRecord> = Vec::new();
    let mut after: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = repo
            .posts_by_author(olga.id, false, None, PageRequest { limit: 4, after })
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().cloned());
        let Some(cursor) = page.next_cursor else {
            break;
        };
        assert_eq!(Some(cursor), page.items.last().map(PostRecord::cursor));
        // Between two reads: a newer post, and one at the cursor's very millisecond that sorts
        // before the cursor (larger id). Neither belongs to the pages still to come.
        post_at(repo, &olga, 1_000_000 + pages, PostStatus::Published).await;
        post_at(
            repo,
            &olga,
            cursor.created_at.millis() - T0,
            PostStatus::Published,
        )
        .await;
        after = Some(cursor);
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(pages, 6);
    let seen_ids: Vec<Id> = seen.iter().map(|p| p.id).collect();
    let expected_ids: Vec<Id> = expected.iter().map(|p| p.id).collect();
    assert_eq!(seen_ids, expected_ids);

    // A page that ends exactly at the last item has no next cursor.
    let all = repo
        .posts_by_author(olga.id, false, None, PageRequest::first(100))
        .await
        .unwrap();
    let total = all.items.len() as u32;
    assert_eq!(total, 22 + 2 * 5);
    assert!(all.next_cursor.is_none());
    let exact = repo
        .posts_by_author(olga.id, false, None, PageRequest::first(total))
        .await
        .unwrap();
    assert!(exact.next_cursor.is_none());
    let short = repo
        .posts_by_author(olga.id, false, None, PageRequest::first(total - 1))
        .await
        .unwrap();
    assert!(short.next_cursor.is_some());
    let mut sorted = all.items.clone();
    newest_first(&mut sorted);
    assert_eq!(all.items, sorted);
}

pub async fn unpublished_posts_show_only_when_asked(db: &TestDb) {
    let repo = db.repo();
    let (pat, quinn) = (user(repo, "pat").await, user(repo, "quinn").await);
    let live = post_at(repo, &pat, 10, PostStatus::Published).await;
    let pending = post_at(repo, &pat, 20, PostStatus::Pending).await;
    let failed = post_at(repo, &pat, 30, PostStatus::Failed).await;
    post_at(repo, &quinn, 40, PostStatus::Published).await;

    let public = repo
        .posts_by_author(pat.id, false, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        public.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![live.id]
    );
    let own = repo
        .posts_by_author(pat.id, true, Some(pat.id), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        own.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![failed.id, pending.id, live.id]
    );
    let nothing = repo
        .posts_by_author(Id::new(), true, None, PageRequest::first(10))
        .await
        .unwrap();
    assert!(nothing.items.is_empty() && nothing.next_cursor.is_none());
}

pub async fn comments_are_counted_and_paged_oldest_first(db: &TestDb) {
    let repo = db.repo();
    let (rob, sue) = (user(repo, "rob").await, user(repo, "sue").await);
    let post = post_at(repo, &rob, 0, PostStatus::Published).await;
    let other = post_at(repo, &rob, 1, PostStatus::Published).await;

    let mut expected = Vec::new();
    for i in 0..9 {
        let author = if i % 2 == 0 { &rob } else { &sue };
        expected.push(comment_at(repo, &post, author, 100 + (i / 2) * 10).await);
    }
    comment_at(repo, &other, &sue, 100).await;
    expected.sort_by_key(|c| (c.created_at, c.id));

    let first = &expected[0];
    assert_eq!(first.post_id, post.id);
    assert_eq!(
        repo.comment_by_id(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(repo.comment_by_id(Id::new()).await.unwrap(), None);
    assert_eq!(expected[1].author, sue.summary());
    assert_eq!(reload_post(repo, &post).await.comment_count, 9);
    assert_eq!(reload_post(repo, &other).await.comment_count, 1);

    // Page through while comments arrive: newer ones join the end; one at the cursor's
    // millisecond with a smaller id is behind the cursor and must not show.
    let mut seen: Vec<Comment> = Vec::new();
    let mut behind = HashSet::new();
    let mut after = None;
    let mut pages = 0u8;
    loop {
        let page = repo
            .comments_of_post(post.id, PageRequest { limit: 2, after })
            .await
            .unwrap();
        seen.extend(page.items.iter().cloned());
        let Some(cursor) = page.next_cursor else {
            break;
        };
        pages += 1;
        assert!(pages < 30, "paging does not end");
        if pages <= 3 {
            comment_at(repo, &post, &sue, 10_000 + i64::from(pages)).await;
            let hidden = comment_with_id(
                repo,
                early_id(pages),
                &post,
                &rob,
                cursor.created_at.millis() - T0,
            )
            .await;
            behind.insert(hidden.id);
        }
        after = Some(cursor);
    }
    let ids: Vec<Id> = seen.iter().map(|c| c.id).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no repeats"
    );
    assert!(ids.iter().all(|id| !behind.contains(id)));
    let originals: Vec<Id> = ids
        .iter()
        .copied()
        .filter(|id| expected.iter().any(|c| c.id == *id))
        .collect();
    assert_eq!(originals, expected.iter().map(|c| c.id).collect::<Vec<_>>());
    assert_eq!(seen.len(), 9 + 3, "the newer comments came at the end");
    let mut sorted = seen.clone();
    sorted.sort_by_key(|c| (c.created_at, c.id));
    assert_eq!(seen, sorted);

    assert_eq!(reload_post(repo, &post).await.comment_count, 9 + 6);
    assert!(repo.delete_comment(first.id).await.unwrap());
    assert!(!repo.delete_comment(first.id).await.unwrap());
    assert_eq!(repo.comment_by_id(first.id).await.unwrap(), None);
    assert_eq!(reload_post(repo, &post).await.comment_count, 9 + 6 - 1);
    assert_eq!(reload_post(repo, &other).await.comment_count, 1);

    // A comment needs an existing post.
    let orphan = repo
        .create_comment(NewComment {
            id: Id::new(),
            post_id: Id::new(),
            author_id: rob.id,
            text: "into the void".into(),
            created_at: at(1),
        })
        .await;
    assert!(matches!(orphan, Err(RepoError::Conflict(_))), "{orphan:?}");
}

pub async fn latest_comments_are_the_newest_per_post(db: &TestDb) {
    let repo = db.repo();
    let (tom, uma) = (user(repo, "tom").await, user(repo, "uma").await);
    let busy = post_at(repo, &tom, 0, PostStatus::Published).await;
    let quiet = post_at(repo, &tom, 1, PostStatus::Published).await;
    let silent = post_at(repo, &tom, 2, PostStatus::Published).await;
    let elsewhere = post_at(repo, &uma, 3, PostStatus::Published).await;

    let mut busy_comments = Vec::new();
    for i in 0..6 {
        // Two comments per millisecond: the id breaks the tie.
        busy_comments.push(comment_at(repo, &busy, &uma, 100 + (i / 2)).await);
    }
    let mut quiet_comments = vec![
        comment_at(repo, &quiet, &uma, 50).await,
        comment_at(repo, &quiet, &tom, 60).await,
    ];
    comment_at(repo, &elsewhere, &tom, 500).await;

    let latest = repo
        .latest_comments(&[busy.id, quiet.id, silent.id], 3)
        .await
        .unwrap();
    let of = |post: Id| {
        latest
            .iter()
            .filter(|c| c.post_id == post)
            .cloned()
            .collect::<Vec<_>>()
    };
    busy_comments.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    quiet_comments.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    assert_eq!(of(busy.id), busy_comments[..3].to_vec());
    assert_eq!(of(quiet.id), quiet_comments);
    assert!(of(silent.id).is_empty());
    assert_eq!(latest.len(), 5, "nothing from posts not asked for");

    assert!(repo.latest_comments(&[], 3).await.unwrap().is_empty());
    let one = repo.latest_comments(&[busy.id], 1).await.unwrap();
    assert_eq!(one, busy_comments[..1].to_vec());
}

pub async fn deleting_a_post_removes_its_comments_and_likes(db: &TestDb) {
    let repo = db.repo();
    let (vic, walt) = (user(repo, "vic").await, user(repo, "walt").await);
    let doomed = post_at(repo, &vic, 0, PostStatus::Published).await;
    let kept = post_at(repo, &vic, 1, PostStatus::Published).await;
    let on_doomed = comment_at(repo, &doomed, &walt, 10).await;
    comment_at(repo, &doomed, &vic, 11).await;
    let on_kept = comment_at(repo, &kept, &walt, 12).await;
    db.exec(&format!(
        "INSERT INTO likes (post_id, user_id, created_at) VALUES ('{d}', '{w}', {T0}), ('{k}', '{w}', {T0}); \
         UPDATE posts SET like_count = like_count + 1 WHERE id IN ('{d}', '{k}')",
        d = doomed.id,
        k = kept.id,
        w = walt.id
    ))
    .await;
    assert_eq!(reload(repo, &vic).await.posts_count, 2);

    assert!(repo.delete_post(doomed.id).await.unwrap());
    assert_eq!(repo.comment_by_id(on_doomed.id).await.unwrap(), None);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM comments WHERE post_id = '{}'",
            doomed.id
        ))
        .await,
        0
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM likes WHERE post_id = '{}'",
            doomed.id
        ))
        .await,
        0
    );
    assert_eq!(reload(repo, &vic).await.posts_count, 1);

    let kept = reload_post(repo, &kept).await;
    assert_eq!((kept.comment_count, kept.like_count), (1, 1));
    assert_eq!(repo.comment_by_id(on_kept.id).await.unwrap(), Some(on_kept));
    assert!(repo
        .latest_comments(&[doomed.id], 3)
        .await
        .unwrap()
        .is_empty());
}

pub async fn deleting_a_user_fixes_everyone_elses_counters(db: &TestDb) {
    let repo = db.repo();
    let gone = user(repo, "gone").await;
    let (vera, will) = (user(repo, "vera").await, user(repo, "will").await);

    // What `gone` owns: posts with comments and likes from others.
    let gone_post = post_at(repo, &gone, 0, PostStatus::Published).await;
    post_at(repo, &gone, 1, PostStatus::Pending).await;
    let vera_on_gone = comment_at(repo, &gone_post, &vera, 10).await;
    // What `gone` did to others: comments and likes on vera's post, follows both ways.
    let vera_post = post_at(repo, &vera, 2, PostStatus::Published).await;
    let gone_on_vera = comment_at(repo, &vera_post, &gone, 20).await;
    comment_at(repo, &vera_post, &gone, 21).await;
    comment_at(repo, &vera_post, &vera, 22).await;
    comment_at(repo, &vera_post, &will, 23).await;
    let (g, v, w) = (gone.id, vera.id, will.id);
    let (gp, vp) = (gone_post.id, vera_post.id);
    db.exec(&format!(
        "INSERT INTO likes (post_id, user_id, created_at) VALUES \
           ('{vp}', '{g}', {T0}), ('{vp}', '{w}', {T0}), ('{gp}', '{v}', {T0}), ('{gp}', '{g}', {T0}); \
         UPDATE posts SET like_count = 2 WHERE id IN ('{vp}', '{gp}'); \
         INSERT INTO follows (follower_id, followee_id, created_at) VALUES \
           ('{g}', '{v}', {T0}), ('{w}', '{g}', {T0}), ('{v}', '{g}', {T0}), ('{w}', '{v}', {T0}); \
         UPDATE users SET following_count = 1, followers_count = 2 WHERE id = '{g}'; \
         UPDATE users SET following_count = 1, followers_count = 2 WHERE id = '{v}'; \
         UPDATE users SET following_count = 2, followers_count = 0 WHERE id = '{w}'"
    ))
    .await;
    let family = Id::new();
    repo.insert_refresh_token(token("gone-token", &gone, family, 60_000))
        .await
        .unwrap();
    let start = IdempotencyStart {
        user_id: g,
        key: "k".into(),
        request_hash: "h".into(),
        now: at(0),
        expired_before: at(-86_400_000),
        stale_before: at(-60_000),
    };
    assert_eq!(
        repo.idempotency_begin(start).await.unwrap(),
        IdempotencyBegin::Started
    );

    assert!(repo.delete_user(g).await.unwrap());

    assert_eq!(repo.user_by_id(g).await.unwrap(), None);
    assert_eq!(repo.user_by_username("gone").await.unwrap(), None);
    assert_eq!(repo.post_by_id(gp, None).await.unwrap(), None);
    assert_eq!(repo.comment_by_id(vera_on_gone.id).await.unwrap(), None);
    assert_eq!(repo.comment_by_id(gone_on_vera.id).await.unwrap(), None);
    assert_eq!(
        repo.use_refresh_token("gone-token", at(1)).await.unwrap(),
        RefreshUse::Unknown
    );
    assert_eq!(repo.refresh_family_of("gone-token").await.unwrap(), None);
    for (table, column) in [
        ("posts", "author_id"),
        ("comments", "author_id"),
        ("likes", "user_id"),
        ("follows", "follower_id"),
        ("follows", "followee_id"),
        ("refresh_tokens", "user_id"),
        ("idempotency_keys", "user_id"),
    ] {
        let left = db
            .count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {column} = '{g}'"
            ))
            .await;
        assert_eq!(left, 0, "{table}.{column} still names the deleted user");
    }
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM likes WHERE post_id = '{gp}'"
        ))
        .await,
        0
    );

    let vera_post = reload_post(repo, &vera_post).await;
    assert_eq!(
        vera_post.comment_count, 2,
        "vera's and will's comments remain"
    );
    assert_eq!(vera_post.like_count, 1, "will's like remains");
    let vera = reload(repo, &vera).await;
    assert_eq!((vera.followers_count, vera.following_count), (1, 0));
    assert_eq!(vera.posts_count, 1);
    let will = reload(repo, &will).await;
    assert_eq!((will.followers_count, will.following_count), (0, 1));
    // The stored counts agree with the rows.
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM comments WHERE post_id = '{vp}'"
        ))
        .await,
        vera_post.comment_count
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM follows WHERE followee_id = '{v}'"
        ))
        .await,
        vera.followers_count
    );

    assert!(!repo.delete_user(g).await.unwrap());
    // The username is free again.
    user(repo, "gone").await;
}

fn begin(user: &User, key: &str, hash: &str, now_ms: i64) -> IdempotencyStart {
    IdempotencyStart {
        user_id: user.id,
        key: key.into(),
        request_hash: hash.into(),
        now: at(now_ms),
        // A 24 h window and a 5 min staleness limit, as the use case passes them.
        expired_before: at(now_ms - 86_400_000),
        stale_before: at(now_ms - 300_000),
    }
}

pub async fn idempotency_records_start_replay_and_mismatch(db: &TestDb) {
    let repo = db.repo();
    let (xena, yuri) = (user(repo, "xena").await, user(repo, "yuri").await);

    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-a", 0))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-a", 10))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight
    );
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-b", 10))
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch
    );
    // Keys belong to a user.
    assert_eq!(
        repo.idempotency_begin(begin(&yuri, "k1", "hash-b", 10))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );

    repo.idempotency_complete(xena.id, "k1", 201, r#"{"id":"p1"}"#)
        .await
        .unwrap();
    let replay = IdempotencyBegin::Replay {
        status: 201,
        body: r#"{"id":"p1"}"#.into(),
    };
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-a", 20))
            .await
            .unwrap(),
        replay
    );
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-b", 20))
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch
    );
    // Abandoning leaves a completed record alone.
    repo.idempotency_abandon(xena.id, "k1").await.unwrap();
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k1", "hash-a", 30))
            .await
            .unwrap(),
        replay
    );

    // An abandoned in-flight record is forgotten: the key can start again.
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k2", "hash-a", 0))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    repo.idempotency_abandon(xena.id, "k2").await.unwrap();
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k2", "hash-c", 40))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        repo.idempotency_begin(begin(&xena, "k2", "hash-c", 50))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight
    );
}

pub async fn idempotency_records_expire_and_go_stale(db: &TestDb) {
    let repo = db.repo();
    let zoe = user(repo, "zoe").await;
    let day = 86_400_000;

    // Completed records replay within the window and are forgotten after it.
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "done", "h", 0))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    repo.idempotency_complete(zoe.id, "done", 200, "{}")
        .await
        .unwrap();
    assert!(matches!(
        repo.idempotency_begin(begin(&zoe, "done", "h", day - 1))
            .await
            .unwrap(),
        IdempotencyBegin::Replay { status: 200, .. }
    ));
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "done", "other", day + 1))
            .await
            .unwrap(),
        IdempotencyBegin::Started,
        "an expired record is replaced, whatever the request"
    );
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "done", "other", day + 2))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight,
        "the replacement is in flight"
    );

    // In-flight records are taken over once stale (5 min), not before.
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "stuck", "h", 0))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "stuck", "h", 299_999))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight
    );
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "stuck", "h", 300_001))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "stuck", "h", 300_002))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight
    );
    // A completed record is never stale: only the 24 h window forgets it.
    repo.idempotency_complete(zoe.id, "stuck", 201, "ok")
        .await
        .unwrap();
    assert_eq!(
        repo.idempotency_begin(begin(&zoe, "stuck", "h", 300_001 + 3_600_000))
            .await
            .unwrap(),
        IdempotencyBegin::Replay {
            status: 201,
            body: "ok".into()
        }
    );
}

pub async fn racing_idempotency_begins_have_one_winner(db: &TestDb) {
    let repo = db.repo();
    let amy = user(repo, "amy").await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let outcomes =
            join_all((0..8).map(|_| repo.idempotency_begin(begin(&amy, &key, "h", 0)))).await;
        let started = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(IdempotencyBegin::Started)))
            .count();
        let in_flight = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(IdempotencyBegin::InFlight)))
            .count();
        assert_eq!((started, in_flight), (1, 7), "round {round}: {outcomes:?}");
    }
    // Racing takeovers of a stale record: still exactly one winner.
    let outcomes =
        join_all((0..8).map(|_| repo.idempotency_begin(begin(&amy, "race-0", "h", 400_000)))).await;
    let started = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(IdempotencyBegin::Started)))
        .count();
    assert_eq!(started, 1, "{outcomes:?}");
}

fn successor(hash: &str, expires_ms: i64) -> RefreshSuccessor {
    RefreshSuccessor {
        token_hash: hash.into(),
        expires_at: at(expires_ms),
    }
}

/// What `refresh` does with a presented token: rotate it, and on a replay revoke the family.
async fn present(repo: &dyn Repo, hash: &str, next: &str) -> RefreshUse {
    let outcome = repo
        .rotate_refresh_token(hash, successor(next, 60_000), at(1))
        .await
        .unwrap();
    if let RefreshUse::Reused { family_id } = outcome {
        repo.revoke_refresh_family(family_id).await.unwrap();
    }
    outcome
}

pub async fn reusing_a_rotated_token_revokes_the_whole_family(db: &TestDb) {
    let repo = db.repo();
    let second = db.second_pool().await;
    let other = second.repo();
    let lee = user(repo, "lee").await;
    let family = Id::new();
    repo.insert_refresh_token(token("t0", &lee, family, 60_000))
        .await
        .unwrap();

    // Rotation stores the successor in the family.
    assert!(matches!(
        present(repo, "t0", "t1").await,
        RefreshUse::Fresh { family_id, user_id, .. } if family_id == family && user_id == lee.id
    ));
    assert_eq!(repo.refresh_family_of("t1").await.unwrap(), Some(family));
    // The replay revokes the family, the successor with it; nothing new is stored.
    assert_eq!(
        present(repo, "t0", "x1").await,
        RefreshUse::Reused { family_id: family }
    );
    assert_eq!(repo.refresh_family_of("x1").await.unwrap(), None);
    assert_eq!(
        present(repo, "t1", "x2").await,
        RefreshUse::Reused { family_id: family }
    );
    assert_eq!(repo.refresh_family_of("x2").await.unwrap(), None);

    // A family with a revoked token takes no successor even through a token still unused.
    let mixed = Id::new();
    for hash in ["m1", "m2"] {
        repo.insert_refresh_token(token(hash, &lee, mixed, 60_000))
            .await
            .unwrap();
    }
    assert!(matches!(
        present(repo, "m1", "m3").await,
        RefreshUse::Fresh { .. }
    ));
    assert_eq!(
        present(repo, "m1", "m4").await,
        RefreshUse::Reused { family_id: mixed }
    );
    assert_eq!(
        present(repo, "m2", "m5").await,
        RefreshUse::Reused { family_id: mixed }
    );
    assert_eq!(repo.refresh_family_of("m5").await.unwrap(), None);

    // The rotation and the replay at once, through two connections: whichever order they
    // take, no token of the family is left live.
    for round in 0..20 {
        let family = Id::new();
        let first = format!("r{round}");
        repo.insert_refresh_token(token(&first, &lee, family, 60_000))
            .await
            .unwrap();
        let (next_a, next_b) = (format!("r{round}-a"), format!("r{round}-b"));
        let (a, b) = tokio::join!(
            present(repo, &first, &next_a),
            present(&*other, &first, &next_b),
        );
        let fresh = [&a, &b]
            .iter()
            .filter(|o| matches!(o, RefreshUse::Fresh { .. }))
            .count();
        assert_eq!(fresh, 1, "round {round}: {a:?} {b:?}");
        let live = db
            .count(&format!(
                "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = '{family}' AND NOT revoked"
            ))
            .await;
        assert_eq!(
            live, 0,
            "round {round}: the successor escaped the revocation"
        );
    }
}
