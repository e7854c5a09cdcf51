//! `read_mix`: the read side at 64 keep-alive connections on the seeded data, against the
//! `/healthz` baseline measured the same way just before.
//!
//! Mix (by request): half home feed pages (`GET /v1/feed?limit=20` as a random social user,
//! who follows 20 authors), a quarter post reads (`GET /v1/posts/{id}` of a random seeded
//! post, signed in), a quarter profile reads (`GET /v1/users/{id}`). File listings join the
//! mix once files are seeded (full harness).

use std::sync::Arc;

use anyhow::{bail, Context};
use async_trait::async_trait;
use rand::Rng;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::{load_figures, say};

pub struct ReadMix;

const FEED: usize = 0;
const POST: usize = 1;
const PROFILE: usize = 2;

#[async_trait]
impl Scenario for ReadMix {
    fn name(&self) -> &'static str {
        "read_mix"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "ratio_to_healthz",
                check: Check::AtLeast(0.5),
            },
            Target {
                figure: "p99_ms",
                check: Check::AtMost(20.0),
            },
            Target {
                figure: "errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let seeded = &ctx.seeded;
        if seeded.social_users == 0 || seeded.post_ids.is_empty() {
            bail!("read_mix needs seeded users and posts");
        }
        // The data must be what we think it is: a full first feed page.
        let first = ctx
            .http
            .get(format!("{}/v1/feed?limit=20", ctx.base_url))
            .bearer_auth(&*ctx.tokens[0])
            .send()
            .await?
            .error_for_status()
            .context("GET /v1/feed")?
            .json::<serde_json::Value>()
            .await?;
        let items = first["items"].as_array().map(Vec::len).unwrap_or(0);
        if items < 20 {
            bail!(
                "the first feed page of a seeded reader has {items} posts, not 20: seeding is off"
            );
        }

        let d = ctx.durations;
        let mut f = Figures::default();
        f.count("connections", ctx.connections as u64);
        f.count("users", seeded.users.len() as u64);
        f.count("posts", seeded.post_ids.len() as u64);
        f.count("follows", seeded.follows as u64);
        f.count("feed_entries", seeded.feed_entries);
        f.set("seconds", d.measure.as_secs_f64(), 1);

        let healthz =
            || |_: u64, _: &mut rand::rngs::StdRng| Req::get(0, "/healthz".to_owned(), None);
        eprintln!("bench: read_mix: /healthz baseline");
        load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.warmup),
            &["healthz"],
            healthz(),
        )
        .await?;
        let base = load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.measure),
            &["healthz"],
            healthz(),
        )
        .await?;
        say("healthz", &base);

        let tokens: Arc<Vec<Arc<str>>> = Arc::new(ctx.tokens.clone());
        let users: Arc<Vec<String>> = Arc::new(
            seeded.users[..seeded.social_users]
                .iter()
                .map(|u| u.id.clone())
                .collect(),
        );
        let posts: Arc<Vec<String>> = Arc::new(seeded.post_ids.clone());
        let mix = || {
            let (tokens, users, posts) = (tokens.clone(), users.clone(), posts.clone());
            move |_: u64, rng: &mut rand::rngs::StdRng| {
                let reader = rng.gen_range(0..tokens.len());
                let token = Some(tokens[reader].clone());
                match rng.gen_range(0..4) {
                    0 | 1 => Req::get(FEED, "/v1/feed?limit=20".to_owned(), token),
                    2 => {
                        let post = &posts[rng.gen_range(0..posts.len())];
                        Req::get(POST, format!("/v1/posts/{post}"), token)
                    }
                    _ => {
                        let user = &users[rng.gen_range(0..users.len())];
                        Req::get(PROFILE, format!("/v1/users/{user}"), token)
                    }
                }
            }
        };
        let kinds = ["feed", "post", "profile"];
        eprintln!("bench: read_mix: feed 50% / post 25% / profile 25%");
        load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.warmup),
            &kinds,
            mix(),
        )
        .await?;
        let r = load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.measure),
            &kinds,
            mix(),
        )
        .await?;
        say("read_mix", &r);

        load_figures(&mut f, "", &r);
        load_figures(&mut f, "healthz_", &base);
        f.set("ratio_to_healthz", r.rps() / base.rps().max(1e-9), 3);
        for (kind, h) in kinds.iter().zip(&r.per_kind) {
            f.count(&format!("{kind}_requests"), h.len());
            f.set(&format!("{kind}_p50_ms"), load::quantile_ms(h, 0.5), 3);
            f.set(&format!("{kind}_p99_ms"), load::quantile_ms(h, 0.99), 3);
        }
        Ok(f)
    }
}
