//! `presign`: `POST /v1/files` (a 1 MiB JPEG declared, private) at 64 keep-alive
//! connections → an upload ticket with its signed URL. Each request is numbered and goes to
//! the social users round-robin, so no user comes near the basic tier's 10 unfinished
//! uploads (quick: 4 per user, full: 8): every request is a ticket, none a 429. Counted runs
//! (quick: 5 000 warm-up + 35 000 measured; full: 10 000 + 70 000) rather than timed ones,
//! for the same reason.

use std::sync::Arc;

use anyhow::bail;
use async_trait::async_trait;
use bytes::Bytes;
use http::Method;

use crate::load::{self, Req, Stop};
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::{load_figures, say};

pub struct Presign;

/// Ticket requests numbered from `offset` (so a second run goes on where the first stopped).
fn requests(
    ctx: &Ctx,
    offset: u64,
) -> impl Fn(u64, &mut rand::rngs::StdRng) -> Req + Send + Sync + 'static {
    let tokens: Arc<Vec<Arc<str>>> = Arc::new(ctx.tokens.clone());
    let n = tokens.len() as u64;
    move |seq: u64, _: &mut rand::rngs::StdRng| {
        let k = offset + seq;
        Req {
            kind: 0,
            method: Method::POST,
            path: "/v1/files".to_owned(),
            token: Some(tokens[(k % n) as usize].clone()),
            body: Some(Bytes::from(format!(
                r#"{{"filename":"IMG_{k:06}.jpg","size":1048576,"content_type":"image/jpeg"}}"#
            ))),
        }
    }
}

#[async_trait]
impl Scenario for Presign {
    fn name(&self) -> &'static str {
        "presign"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "tickets_per_s",
                check: Check::AtLeast(5000.0),
            },
            Target {
                figure: "errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        let (warmup, measured) = if ctx.durations.quick {
            (5_000, 35_000)
        } else {
            (10_000, 70_000)
        };
        if ctx.tokens.is_empty() {
            bail!("presign needs seeded users");
        }
        eprintln!("bench: presign: {measured} tickets after {warmup} not counted");
        load::run(
            ctx.addr,
            ctx.connections,
            Stop::Count(warmup),
            &["ticket"],
            requests(ctx, 0),
        )
        .await?;
        let r = load::run(
            ctx.addr,
            ctx.connections,
            Stop::Count(measured),
            &["ticket"],
            requests(ctx, warmup),
        )
        .await?;
        say("presign", &r);
        let mut f = Figures::default();
        f.count("connections", ctx.connections as u64);
        load_figures(&mut f, "", &r);
        f.set("tickets_per_s", r.rps(), 1);
        Ok(f)
    }
}
