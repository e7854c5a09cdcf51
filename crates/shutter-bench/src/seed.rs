//! Bulk data written straight into the server's database (SQLite in the temporary data
//! directory, or the scratch PostgreSQL database of `--database`), after `shutter migrate`
//! and before `shutter serve`: registering through the API would cost one Argon2 hash per
//! user. Every user gets the same precomputed hash of
//! [`PASSWORD`], so any of them can also log in through the API.
//!
//! The rows are what the server itself would have written: exact counters, published posts
//! marked `fanned_out` with their `feed_entries` (the steady state after fan-out), follows
//! with their times. Ids are UUIDv7 made from each row's own time.
//!
//! The rows are made once and written by one function generic over the sqlx database
//! ([`write_rows`]); only opening the connection and settling afterwards differ (SQLite:
//! pragmas for a bulk load, then a WAL checkpoint; PostgreSQL: `VACUUM (ANALYZE)`).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::encode::Encode;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Sqlite, SqliteConnection, Type};

use crate::db::Database;

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password";

/// How much to seed.
#[derive(Clone, Debug)]
pub struct SeedPlan {
    /// Users who post and follow each other (the social graph read by `read_mix`).
    pub users: usize,
    /// Extra users who only follow the fan-out authors (so an author can have more
    /// followers than there are social users).
    pub crowd: usize,
    pub posts: usize,
    /// Follows among the social users (each follows `follows / users` distinct others).
    pub follows: usize,
    /// One author per entry, followed by that many users (the first ones, social then crowd)
    /// and without posts yet: the `fanout` scenario's authors.
    pub fan_authors: Vec<usize>,
    /// Ready (uploaded) files of each social user, for the file listings of `read_mix`.
    pub files_per_user: usize,
}

/// A seeded user.
#[derive(Clone, Debug)]
pub struct SeedUser {
    pub id: String,
    pub username: String,
}

/// An author with followers and no posts.
#[derive(Clone, Debug)]
pub struct FanAuthor {
    pub user: SeedUser,
    pub followers: usize,
    /// The follower with the greatest id: fan-out walks followers in id order, so this
    /// feed is written last.
    pub last_follower: SeedUser,
}

/// What was seeded, for the scenarios.
#[derive(Debug)]
pub struct Seeded {
    /// Social users first, then the crowd.
    pub users: Vec<SeedUser>,
    pub social_users: usize,
    pub post_ids: Vec<String>,
    pub follows: usize,
    pub feed_entries: u64,
    pub fan_authors: Vec<FanAuthor>,
    /// A published post nobody has liked yet (by a user of its own), for `like_storm`.
    pub storm_post: String,
    /// A premium user with nothing yet (premium: files up to 5 GiB), for `upload_large`.
    pub premium: SeedUser,
    pub files: usize,
    pub seconds: f64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A UUIDv7 for a row created at `ms`.
fn id_at(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    uuid::Uuid::new_v7(ts).hyphenated().to_string()
}

struct UserRow {
    id: String,
    username: String,
    created_at: i64,
    followers: i64,
    following: i64,
    posts: i64,
}

/// Every row to write, made before any is written.
struct Rows {
    /// The one password hash of every user.
    hash: String,
    users: Vec<UserRow>,
    /// (follower, followee, time), indexes into `users`: first the follows among social
    /// users, then the fan-out authors' followers.
    follows: Vec<(usize, usize, i64)>,
    social_follows: usize,
    /// (id, author, time), in time order; the last is the like-storm post.
    posts: Vec<(String, usize, i64)>,
    /// (id, owner, time).
    files: Vec<(String, usize, i64)>,
}

/// Seeds `db` (already migrated, server not running).
pub async fn seed(db: &Database, plan: &SeedPlan) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let rows = make_rows(plan)?;
    let feed_entries = match db {
        Database::Sqlite { path } => {
            let url = format!("sqlite://{}", path.display());
            let options = SqliteConnectOptions::from_str(&url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Off)
                .foreign_keys(false)
                .pragma("cache_size", "-262144");
            let mut conn = SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            let n = write_rows::<Sqlite>(&mut conn, &rows).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            n
        }
        Database::Postgres(scratch) => {
            let mut conn = PgConnection::connect(&scratch.url)
                .await
                .with_context(|| format!("connecting to the scratch database {}", scratch.name))?;
            // A bulk load: the commit need not wait for its WAL to reach the disk.
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut conn)
                .await?;
            let n = write_rows::<Postgres>(&mut conn, &rows).await?;
            // Statistics for the planner, and the visibility map and hint bits a settled
            // database has, so the first scenario's reads neither plan blind nor write.
            sqlx::query("VACUUM (ANALYZE)")
                .execute(&mut conn)
                .await
                .context("VACUUM (ANALYZE) after seeding")?;
            conn.close().await?;
            n
        }
    };
    Ok(seeded(plan, &rows, feed_entries, started))
}

/// Makes every row of `plan`, before any is written.
fn make_rows(plan: &SeedPlan) -> anyhow::Result<Rows> {
    let hash = {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string()
    };
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let now = now_ms();
    let day = 86_400_000i64;

    // Users: social, crowd, fan-out authors, the like-storm author, the premium user.
    // Created over 60 days, in order, so ids follow creation.
    let n_social = plan.users;
    let n_people = plan.users + plan.crowd;
    let storm_author = n_people + plan.fan_authors.len();
    let premium = storm_author + 1;
    let n_total = premium + 1;
    let mut users: Vec<UserRow> = (0..n_total)
        .map(|i| {
            let created_at = now - 60 * day + (i as i64) * (30 * day / n_total.max(1) as i64);
            let username = if i < n_social {
                format!("bench_{i}")
            } else if i < n_people {
                format!("bench_crowd_{}", i - n_social)
            } else if i < storm_author {
                format!("bench_fan_{}", i - n_people)
            } else if i == storm_author {
                "bench_storm".to_owned()
            } else {
                "bench_premium".to_owned()
            };
            UserRow {
                id: id_at(created_at),
                username,
                created_at,
                followers: 0,
                following: 0,
                posts: 0,
            }
        })
        .collect();

    // Follows among social users: each follows `per_user` distinct others.
    let per_user = plan.follows.checked_div(n_social).unwrap_or(0);
    let mut follows: Vec<(usize, usize, i64)> = Vec::with_capacity(plan.follows);
    if n_social > per_user {
        for follower in 0..n_social {
            let mut chosen = HashSet::with_capacity(per_user);
            while chosen.len() < per_user {
                let followee = rng.gen_range(0..n_social);
                if followee != follower {
                    chosen.insert(followee);
                }
            }
            for followee in chosen {
                let at = now - rng.gen_range(day..30 * day);
                follows.push((follower, followee, at));
            }
        }
    }
    let social_follows = follows.len();
    // Fan-out authors' followers: the first `n` people.
    for (k, &n) in plan.fan_authors.iter().enumerate() {
        let author = n_people + k;
        for follower in 0..n.min(n_people) {
            follows.push((follower, author, now - rng.gen_range(day..30 * day)));
        }
    }
    for &(follower, followee, _) in &follows {
        users[follower].following += 1;
        users[followee].followers += 1;
    }

    // Posts by social users over the last 30 days, in time order.
    let mut post_times: Vec<(i64, usize)> = (0..plan.posts)
        .map(|_| {
            (
                now - rng.gen_range(60_000..30 * day),
                rng.gen_range(0..n_social.max(1)),
            )
        })
        .collect();
    post_times.sort_unstable();
    post_times.push((now - 60_000, storm_author));
    let posts: Vec<(String, usize, i64)> = post_times
        .into_iter()
        .map(|(at, author)| (id_at(at), author, at))
        .collect();
    for &(_, author, _) in &posts {
        users[author].posts += 1;
    }
    // Files: ready, private, uploaded over the last 30 days, as a finished PUT leaves them.
    let mut files: Vec<(String, usize, i64)> = (0..n_social)
        .flat_map(|owner| (0..plan.files_per_user).map(move |k| (owner, k)))
        .map(|(owner, _)| {
            let at = now - rng.gen_range(60_000..30 * day);
            (id_at(at), owner, at)
        })
        .collect();
    files.sort_unstable_by_key(|f| f.2);
    Ok(Rows {
        hash,
        users,
        follows,
        social_follows,
        posts,
        files,
    })
}

/// Runs a built statement and answers how many rows it wrote. The body is the same for both
/// drivers, but it cannot be written once for any `DB`: a `QueryBuilder`'s arguments may
/// only be borrowed for less than their own lifetime in a concrete driver (where that
/// lifetime is covariant), not through the generic `DB::Arguments<'args>`.
trait SeedDb: sqlx::Database {
    async fn run(conn: &mut Self::Connection, qb: QueryBuilder<'_, Self>) -> sqlx::Result<u64>;
}

macro_rules! seed_db {
    ($($db:ty),*) => {$(
        impl SeedDb for $db {
            async fn run(
                conn: &mut Self::Connection,
                mut qb: QueryBuilder<'_, Self>,
            ) -> sqlx::Result<u64> {
                Ok(qb.build().execute(conn).await?.rows_affected())
            }
        }
    )*};
}

seed_db!(Sqlite, Postgres);

/// Writes `rows` in one transaction; returns how many feed entries were written.
async fn write_rows<DB>(conn: &mut DB::Connection, rows: &Rows) -> anyhow::Result<u64>
where
    DB: SeedDb,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    // BOOLEAN on PostgreSQL; sqlx binds it as the integer 0 or 1 on SQLite.
    for<'a> bool: Encode<'a, DB> + Type<DB>,
{
    let Rows {
        hash,
        users,
        follows,
        posts,
        files,
        ..
    } = rows;
    // Rows per multi-row INSERT keep every statement's parameters (at most 1 000 × 13, for
    // `files`) far under PostgreSQL's 65 535 and SQLite's 32 766.
    let mut tx = conn.begin().await?;
    for chunk in users.chunks(500) {
        let mut qb: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO users (id, username, display_name, password_hash, tier, role, \
             created_at, followers_count, following_count, posts_count) ",
        );
        qb.push_values(chunk, |mut b, u| {
            b.push_bind(u.id.as_str())
                .push_bind(u.username.as_str())
                .push_bind(u.username.as_str())
                .push_bind(hash.as_str())
                .push_bind(if u.username == "bench_premium" {
                    "premium"
                } else {
                    "basic"
                })
                .push_bind("user")
                .push_bind(u.created_at)
                .push_bind(u.followers)
                .push_bind(u.following)
                .push_bind(u.posts);
        });
        DB::run(&mut tx, qb).await.context("seeding users")?;
    }
    for chunk in posts.chunks(1000) {
        let mut qb: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO posts (id, author_id, caption, status, created_at, updated_at, fanned_out) ",
        );
        qb.push_values(chunk, |mut b, (id, author, at)| {
            b.push_bind(id.as_str())
                .push_bind(users[*author].id.as_str())
                .push_bind(format!(
                    "Seeded post by {} — a caption of ordinary length, with a #tag.",
                    users[*author].username
                ))
                .push_bind("published")
                .push_bind(*at)
                .push_bind(*at)
                .push_bind(true);
        });
        DB::run(&mut tx, qb).await.context("seeding posts")?;
    }
    for chunk in follows.chunks(2000) {
        let mut qb: QueryBuilder<DB> =
            QueryBuilder::new("INSERT INTO follows (follower_id, followee_id, created_at) ");
        qb.push_values(chunk, |mut b, (follower, followee, at)| {
            b.push_bind(users[*follower].id.as_str())
                .push_bind(users[*followee].id.as_str())
                .push_bind(*at);
        });
        DB::run(&mut tx, qb).await.context("seeding follows")?;
    }
    for chunk in files.chunks(1000) {
        let mut qb: QueryBuilder<DB> = QueryBuilder::new(
            "INSERT INTO files (id, owner_id, filename, content_type, size, sha256, md5, \
             visibility, status, bytes_received, upload_expires_at, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (id, owner, at)| {
            b.push_bind(id.as_str())
                .push_bind(users[*owner].id.as_str())
                .push_bind(format!("report-{}.pdf", &id[..8]))
                .push_bind("application/pdf")
                .push_bind(250_000i64)
                .push_bind("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
                .push_bind("098f6bcd4621d373cade4e832627b4f6")
                .push_bind("private")
                .push_bind("ready")
                .push_bind(250_000i64)
                .push_bind(*at + 3_600_000)
                .push_bind(*at)
                .push_bind(*at);
        });
        DB::run(&mut tx, qb).await.context("seeding files")?;
    }
    DB::run(
        &mut tx,
        QueryBuilder::new(
            "INSERT INTO file_tags (file_id, tag, position) SELECT id, 'bench', 0 FROM files",
        ),
    )
    .await
    .context("seeding file tags")?;
    // Every seeded post is fanned out: its followers' feeds hold it, as the fan-out job would
    // have left them. Written in the table's key order (reader, newest first), which is far
    // quicker than in post order.
    let feed_entries = DB::run(
        &mut tx,
        QueryBuilder::new(
            "INSERT INTO feed_entries (user_id, post_id, author_id, created_at) \
             SELECT f.follower_id, p.id, p.author_id, p.created_at \
             FROM posts p JOIN follows f ON f.followee_id = p.author_id \
             ORDER BY f.follower_id, p.created_at DESC, p.id DESC",
        ),
    )
    .await
    .context("seeding feed entries")?;
    tx.commit().await?;
    Ok(feed_entries)
}

/// What was seeded, for the scenarios.
fn seeded(plan: &SeedPlan, rows: &Rows, feed_entries: u64, started: Instant) -> Seeded {
    let Rows {
        users,
        social_follows,
        posts,
        files,
        ..
    } = rows;
    let n_social = plan.users;
    let n_people = plan.users + plan.crowd;
    let premium = n_people + plan.fan_authors.len() + 1;
    let seed_user = |i: usize| SeedUser {
        id: users[i].id.clone(),
        username: users[i].username.clone(),
    };
    let fan_authors = plan
        .fan_authors
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let last = (0..n.min(n_people))
                .max_by(|&a, &b| users[a].id.cmp(&users[b].id))
                .unwrap_or(0);
            FanAuthor {
                user: seed_user(n_people + k),
                followers: n.min(n_people),
                last_follower: seed_user(last),
            }
        })
        .collect();
    let storm_post = posts
        .last()
        .map(|(id, _, _)| id.clone())
        .unwrap_or_default();
    Seeded {
        users: (0..n_people).map(seed_user).collect(),
        social_users: n_social,
        post_ids: posts[..posts.len().saturating_sub(1)]
            .iter()
            .map(|(id, _, _)| id.clone())
            .collect(),
        follows: *social_follows,
        feed_entries,
        fan_authors,
        storm_post,
        premium: seed_user(premium),
        files: files.len(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_their_time() {
        let a = id_at(1_000);
        let b = id_at(2_000);
        assert!(a < b);
        assert_eq!(a.len(), 36);
    }
}
