//! `like_storm`: 10 000 distinct seeded users (minted tokens) like one post, at 64
//! keep-alive connections, each `PUT /v1/posts/{id}/like` once. Then `like_count` is read
//! through `GET /v1/posts/{id}` until it reaches the number of likes or 2 s have passed
//! (the specification lets it lag by at most 1 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use http::Method;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::{load_figures, say};

pub struct LikeStorm;

const LIKERS: usize = 10_000;

#[async_trait]
impl Scenario for LikeStorm {
    fn name(&self) -> &'static str {
        "like_storm"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "final_count",
                check: Check::EqualsFigure("expected_count"),
            },
            Target {
                figure: "likes_per_s",
                check: Check::AtLeast(5000.0),
            },
            Target {
                figure: "errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        if ctx.tokens.len() < LIKERS {
            bail!(
                "like_storm needs {LIKERS} seeded users, there are {}",
                ctx.tokens.len()
            );
        }
        let post = ctx.seeded.storm_post.clone();
        let path: Arc<str> = format!("/v1/posts/{post}/like").into();
        let tokens: Arc<Vec<Arc<str>>> = Arc::new(ctx.tokens[..LIKERS].to_vec());
        eprintln!("bench: like_storm: {LIKERS} users like one post");
        let r = load::run(
            ctx.addr,
            ctx.connections,
            Stop::Count(LIKERS as u64),
            &["like"],
            {
                move |seq: u64, _: &mut rand::rngs::StdRng| Req {
                    kind: 0,
                    method: Method::PUT,
                    path: path.to_string(),
                    token: tokens.get(seq as usize).cloned(),
                    body: None,
                }
            },
        )
        .await?;
        say("likes", &r);
        let done = Instant::now();

        let url = format!("{}/v1/posts/{post}", ctx.base_url);
        let (final_count, settle) = loop {
            let body: serde_json::Value = ctx
                .http
                .get(&url)
                .send()
                .await?
                .error_for_status()
                .context("GET /v1/posts/{id}")?
                .json()
                .await?;
            let count = body["like_count"].as_u64().unwrap_or(0);
            if count >= LIKERS as u64 || done.elapsed() >= Duration::from_secs(2) {
                break (count, done.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let rows = ctx
            .db
            .count("SELECT COUNT(*) FROM likes WHERE post_id = $1", &[&post])
            .await?;
        eprintln!(
            "bench:   like_count {final_count} after {:.0} ms ({rows} like rows)",
            settle.as_secs_f64() * 1000.0
        );

        let mut f = Figures::default();
        load_figures(&mut f, "", &r);
        f.set("likes_per_s", r.rps(), 1);
        f.count("final_count", final_count);
        f.count("expected_count", LIKERS as u64);
        f.count("like_rows", rows.max(0) as u64);
        f.set("count_settle_ms", settle.as_secs_f64() * 1000.0, 0);
        Ok(f)
    }
}
