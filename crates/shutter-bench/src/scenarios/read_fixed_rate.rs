//! `read_fixed_rate`: the `read_mix` requests at a fixed 500 requests per second (30 000 a
//! minute) for 30 s (10 s in quick mode), an open loop over 64 keep-alive connections: each
//! request falls due at its time whether or not earlier ones were answered, and its latency
//! counts from then. This is the latency a user sees at a steady, realistic load, where
//! `read_mix` measures the most the server can do.

use std::time::Duration;

use async_trait::async_trait;

use crate::load;
use crate::scenario::{Check, Ctx, Figures, Scenario, Target};
use crate::scenarios::read_mix::{check_seeded, requests, KINDS};
use crate::scenarios::{load_figures, say};

pub struct ReadFixedRate;

/// Requests per second.
const RATE: f64 = 500.0;

#[async_trait]
impl Scenario for ReadFixedRate {
    fn name(&self) -> &'static str {
        "read_fixed_rate"
    }

    fn targets(&self) -> Vec<Target> {
        vec![
            Target {
                figure: "p99_ms",
                check: Check::AtMost(10.0),
            },
            Target {
                figure: "errors",
                check: Check::AtMost(0.0),
            },
        ]
    }

    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures> {
        check_seeded(ctx).await?;
        let seconds = if ctx.durations.quick { 10 } else { 30 };
        eprintln!("bench: read_fixed_rate: the read mix at {RATE} req/s for {seconds} s");
        // A short warm-up at the same rate, not counted.
        load::run_at_rate(
            ctx.addr,
            ctx.connections,
            RATE,
            Duration::from_secs(2),
            &KINDS,
            requests(ctx),
        )
        .await?;
        let r = load::run_at_rate(
            ctx.addr,
            ctx.connections,
            RATE,
            Duration::from_secs(seconds),
            &KINDS,
            requests(ctx),
        )
        .await?;
        say("read_fixed_rate", &r);
        let mut f = Figures::default();
        f.set("rate", RATE, 0);
        f.count("seconds", seconds);
        load_figures(&mut f, "", &r);
        f.count("late", r.late);
        for (kind, h) in KINDS.iter().zip(&r.per_kind) {
            f.set(&format!("{kind}_p99_ms"), load::quantile_ms(h, 0.99), 3);
        }
        Ok(f)
    }
}
