//! `fanout`: an author with 10 000 followers (and, in full mode, one with 100 000) publishes
//! a text post through the API; measured from just before `POST /v1/posts` until the feed
//! of the follower written last (fan-out walks followers in id order) holds it in
//! `feed_entries`, polled every 5 ms in the database. Then the entry count is checked
//! against the follower count, and `GET /v1/feed` of that last follower must start with the
//! post. The server runs with `feed.fanout_threshold` above both follower counts, so this is
//! the push path.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use serde_json::json;

use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::seed::FanAuthor;

pub struct Fanout;

/// The label of a follower count in figure names: `10k`, `100k`.
fn label(followers: usize) -> String {
    if followers.is_multiple_of(1000) {
        format!("{}k", followers / 1000)
    } else {
        followers.to_string()
    }
}

#[async_trait]
impl Scenario for Fanout {
    fn name(&self) -> &'static str {
        "fanout"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "seconds_10k",
                check: Check::AtMost(0.5),
            },
            Target {
                figure: "seconds_100k",
                check: Check::AtMost(3.0),
            },
            Target {
                figure: "entries_10k",
                check: Check::EqualsFigure("followers_10k"),
            },
        ]
    }

    fn skipped(&self, quick: bool) -> Vec<(&'static str, &'static str)> {
        if quick {
            vec![("seconds_100k", "skipped in quick mode")]
        } else {
            Vec::new()
        }
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let mut f = Figures::default();
        if ctx.seeded.fan_authors.is_empty() {
            bail!("no fan-out authors were seeded");
        }
        for author in &ctx.seeded.fan_authors {
            let l = label(author.followers);
            eprintln!("bench: fanout: a post to {} followers", author.followers);
            let timeout = Duration::from_secs(60 + author.followers as u64 / 200);
            measure(ctx, author, &l, timeout, &mut f).await?;
        }
        Ok(f)
    }
}

async fn measure(
    ctx: &Ctx,
    author: &FanAuthor,
    l: &str,
    timeout: Duration,
    f: &mut Figures,
) -> anyhow::Result<()> {
    let token = ctx.minter.token(&author.user.id)?;
    f.count(&format!("followers_{l}"), author.followers as u64);
    let started = Instant::now();
    let resp = ctx
        .http
        .post(format!("{}/v1/posts", ctx.base_url))
        .bearer_auth(&token)
        .json(&json!({ "caption": format!("fan-out to {l} followers") }))
        .send()
        .await?
        .error_for_status()
        .context("POST /v1/posts")?;
    let created = started.elapsed();
    let body: serde_json::Value = resp.json().await?;
    let Some(post) = body["post"]["id"].as_str().map(str::to_owned) else {
        bail!("POST /v1/posts answered without post.id: {body}");
    };
    let seconds = loop {
        let hit = ctx
            .db
            .count(
                "SELECT COUNT(*) FROM feed_entries WHERE user_id = $1 AND post_id = $2",
                &[&author.last_follower.id, &post],
            )
            .await?;
        if hit > 0 {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed() > timeout {
            eprintln!("bench:   gave up after {timeout:?}");
            f.count(&format!("timed_out_{l}"), 1);
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The job marks the post fanned out in its last step (which also catches up followers
    // who arrived meanwhile): from then on no feed pulls it at read time.
    let marked = loop {
        // `fanned_out` is 0/1 on SQLite, a boolean on PostgreSQL: both take it as a condition.
        let fanned_out = ctx
            .db
            .count(
                "SELECT COUNT(*) FROM posts WHERE id = $1 AND fanned_out",
                &[&post],
            )
            .await?;
        if fanned_out == 1 {
            break Some(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let entries = ctx
        .db
        .count(
            "SELECT COUNT(*) FROM feed_entries WHERE post_id = $1",
            &[&post],
        )
        .await?;
    let last_token = ctx.minter.token(&author.last_follower.id)?;
    let feed: serde_json::Value = ctx
        .http
        .get(format!("{}/v1/feed?limit=1", ctx.base_url))
        .bearer_auth(&last_token)
        .send()
        .await?
        .error_for_status()
        .context("GET /v1/feed")?
        .json()
        .await?;
    let confirmed = feed["items"][0]["id"].as_str() == Some(post.as_str());
    if seconds.is_finite() {
        f.set(&format!("seconds_{l}"), seconds, 3);
    }
    f.set(&format!("create_ms_{l}"), created.as_secs_f64() * 1000.0, 1);
    f.count(&format!("entries_{l}"), entries.max(0) as u64);
    if let Some(marked) = marked {
        f.set(&format!("seconds_marked_{l}"), marked, 3);
    }
    f.count(&format!("feed_confirmed_{l}"), u64::from(confirmed));
    eprintln!(
        "bench:   {seconds:.3} s until the last follower's feed had it ({entries} entries, \
         POST took {:.1} ms, last follower's GET /v1/feed {})",
        created.as_secs_f64() * 1000.0,
        if confirmed {
            "starts with it"
        } else {
            "does NOT start with it"
        }
    );
    Ok(())
}
