//! `read_mix`: the read side at 64 keep-alive connections on the seeded data, against the
//! `/healthz` baseline measured the same way just before.
//!
//! Mix (by request, each as a random social user): 40 % home feed pages (`GET
//! /v1/feed?limit=20`; the user follows 20 authors), 20 % post reads (`GET /v1/posts/{id}` of a
//! random seeded post), 20 % profile reads (`GET /v1/users/{id}`), 20 % file listings (`GET
//! /v1/files?limit=20`, the user's own five seeded files).

use anyhow::{bail, Context};
use async_trait::async_trait;
use rand::Rng;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::Social;
use crate::scenarios::{load_figures, say};

pub struct ReadMix;

const FEED: usize = 0;
const POST: usize = 1;
const PROFILE: usize = 2;
const FILES: usize = 3;
/// The request kinds of the mix, by index.
pub(crate) const KINDS: [&str; 4] = ["feed", "post", "profile", "files"];

/// The mix's request generator (also used by `read_fixed_rate`).
pub(crate) fn requests(
    ctx: &Ctx,
) -> impl Fn(u64, &mut rand::rngs::StdRng) -> Req + Send + Sync + 'static {
    let Social {
        tokens,
        users,
        posts,
    } = Social::of(ctx);
    move |_: u64, rng: &mut rand::rngs::StdRng| {
        let reader = rng.gen_range(0..tokens.len());
        let token = Some(tokens[reader].clone());
        match rng.gen_range(0..5) {
            0 | 1 => Req::get(FEED, "/v1/feed?limit=20".to_owned(), token),
            2 => {
                let post = &posts[rng.gen_range(0..posts.len())];
                Req::get(POST, format!("/v1/posts/{post}"), token)
            }
            3 => {
                let user = &users[rng.gen_range(0..users.len())];
                Req::get(PROFILE, format!("/v1/users/{user}"), token)
            }
            _ => Req::get(FILES, "/v1/files?limit=20".to_owned(), token),
        }
    }
}

/// Checks that the seeded data is what the mix expects: a full first feed page.
pub(crate) async fn check_seeded(ctx: &Ctx) -> anyhow::Result<()> {
    let seeded = &ctx.seeded;
    if seeded.social_users == 0 || seeded.post_ids.is_empty() {
        bail!("the read mix needs seeded users and posts");
    }
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
        bail!("the first feed page of a seeded reader has {items} posts, not 20: seeding is off");
    }
    let files = ctx
        .http
        .get(format!("{}/v1/files?limit=20", ctx.base_url))
        .bearer_auth(&*ctx.tokens[0])
        .send()
        .await?
        .error_for_status()
        .context("GET /v1/files")?
        .json::<serde_json::Value>()
        .await?;
    let listed = files["items"].as_array().map(Vec::len).unwrap_or(0);
    if seeded.files > 0 && listed == 0 {
        bail!("a seeded user's file listing is empty: seeding is off");
    }
    Ok(())
}

#[async_trait]
impl Scenario for ReadMix {
    fn name(&self) -> &'static str {
        "read_mix"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "ratio_to_healthz",
                check: Check::AtLeast(if crate::scenario::on_postgres() {
                    0.35
                } else {
                    0.5
                }),
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
        check_seeded(ctx).await?;
        let seeded = &ctx.seeded;
        let d = ctx.durations;
        let mut f = Figures::default();
        f.count("connections", ctx.connections as u64);
        f.count("users", seeded.users.len() as u64);
        f.count("posts", seeded.post_ids.len() as u64);
        f.count("follows", seeded.follows as u64);
        f.count("feed_entries", seeded.feed_entries);
        f.count("files", seeded.files as u64);
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

        let mix = || requests(ctx);
        let kinds = KINDS;
        eprintln!("bench: read_mix: feed 40% / post 20% / profile 20% / files 20%");
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
