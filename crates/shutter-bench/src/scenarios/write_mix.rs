//! `write_mix`: the write side at 64 keep-alive connections, each request as a random social
//! user: a quarter each of new text posts (`POST /v1/posts`, fanned out to the author's
//! followers by the background job), comments on a random seeded post (`POST
//! /v1/posts/{id}/comments`), likes of one (`PUT /v1/posts/{id}/like`) and follows of a
//! random user (`PUT /v1/users/{id}/follow`). Likes and follows are idempotent, so a repeat
//! is a valid request too.

use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use rand::Rng;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::Social;
use crate::scenarios::{load_figures, say};

pub struct WriteMix;

const KINDS: [&str; 4] = ["post", "comment", "like", "follow"];

pub(crate) fn requests(
    ctx: &Ctx,
) -> impl Fn(u64, &mut rand::rngs::StdRng) -> Req + Send + Sync + 'static {
    let Social {
        tokens,
        users,
        posts,
    } = Social::of(ctx);
    move |seq: u64, rng: &mut rand::rngs::StdRng| {
        let me = rng.gen_range(0..tokens.len());
        let token = Some(tokens[me].clone());
        let post = &posts[rng.gen_range(0..posts.len())];
        let kind = rng.gen_range(0..4);
        let (method, path, body) = match kind {
            0 => (
                Method::POST,
                "/v1/posts".to_owned(),
                Some(format!(
                    r#"{{"caption":"Benchmark post {seq}: an ordinary caption with a #tag."}}"#
                )),
            ),
            1 => (
                Method::POST,
                format!("/v1/posts/{post}/comments"),
                Some(format!(
                    r#"{{"text":"Benchmark comment {seq}, a sentence long."}}"#
                )),
            ),
            2 => (Method::PUT, format!("/v1/posts/{post}/like"), None),
            _ => {
                let mut other = rng.gen_range(0..users.len());
                if other == me {
                    other = (other + 1) % users.len();
                }
                (
                    Method::PUT,
                    format!("/v1/users/{}/follow", users[other]),
                    None,
                )
            }
        };
        Req {
            kind,
            method,
            path,
            token,
            body: body.map(Bytes::from),
        }
    }
}

#[async_trait]
impl Scenario for WriteMix {
    fn name(&self) -> &'static str {
        "write_mix"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "rps",
                check: Check::AtLeast(3000.0),
            },
            Target {
                figure: "p99_ms",
                check: Check::AtMost(50.0),
            },
            Target {
                figure: "errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        if ctx.seeded.social_users < 2 || ctx.seeded.post_ids.is_empty() {
            anyhow::bail!("write_mix needs seeded users and posts");
        }
        let d = ctx.durations;
        eprintln!("bench: write_mix: post 25% / comment 25% / like 25% / follow 25%");
        load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.warmup),
            &KINDS,
            requests(ctx),
        )
        .await?;
        let r = load::run(
            ctx.addr,
            ctx.connections,
            Stop::For(d.measure),
            &KINDS,
            requests(ctx),
        )
        .await?;
        say("write_mix", &r);
        let mut f = Figures::default();
        f.count("connections", ctx.connections as u64);
        f.set("seconds", d.measure.as_secs_f64(), 1);
        load_figures(&mut f, "", &r);
        for (kind, h) in KINDS.iter().zip(&r.per_kind) {
            f.count(&format!("{kind}_requests"), h.len());
            f.set(&format!("{kind}_p99_ms"), load::quantile_ms(h, 0.99), 3);
        }
        Ok(f)
    }
}
