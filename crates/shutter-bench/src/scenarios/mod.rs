//! The implemented scenarios (see `scenario::all` for the full list, planned ones included).

pub mod fanout;
pub mod like_storm;
pub mod read_mix;

use crate::load::Report;
use crate::scenario::Figures;

/// The figures every load run reports: `rps`, `p50_ms`, `p99_ms`, `p999_ms`, `max_ms`,
/// `requests`, `errors`, each name prefixed with `prefix`.
pub(crate) fn load_figures(f: &mut Figures, prefix: &str, r: &Report) {
    f.set(&format!("{prefix}rps"), r.rps(), 1);
    f.set(&format!("{prefix}p50_ms"), r.quantile_ms(0.50), 3);
    f.set(&format!("{prefix}p99_ms"), r.quantile_ms(0.99), 3);
    f.set(&format!("{prefix}p999_ms"), r.quantile_ms(0.999), 3);
    f.set(&format!("{prefix}max_ms"), r.all.max() as f64 / 1000.0, 3);
    f.count(&format!("{prefix}requests"), r.ok);
    f.count(&format!("{prefix}errors"), r.errors());
}

/// Prints a one-line summary of a load run to stderr (progress for the person waiting).
pub(crate) fn say(what: &str, r: &Report) {
    let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    eprintln!(
        "bench:   {what}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}{}",
        r.rps(),
        r.quantile_ms(0.5),
        r.quantile_ms(0.99),
        r.ok,
        r.errors(),
        if statuses.is_empty() { "" } else { " " },
        statuses.join(" ")
    );
}
