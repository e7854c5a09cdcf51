//! The Prometheus recorder keeps each histogram sample until it is folded into its buckets.
//! On a server nobody scrapes, that must still happen: otherwise every timed request stays
//! in memory for good (a 10-minute soak of 660 000 requests grew the server by megabytes).
//! Its own test binary, so no other test allocates beside it.

#![allow(clippy::expect_used)]

use std::time::Duration;

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn histogram_samples_do_not_pile_up_when_nobody_reads_the_metrics() {
    const PER_SECOND: usize = 400_000;
    const SECONDS: usize = 10;
    let _handle = shutter_api::telemetry::metrics_handle();
    let timed = metrics::histogram!("http_request_duration_seconds",
        "method" => "GET", "route" => "/v1/test", "status" => "200");
    let record = || {
        for i in 0..PER_SECOND {
            timed.record(i as f64 * 1e-9);
        }
        std::thread::sleep(Duration::from_millis(1100));
    };
    // One second's worth first, so the allocator has its working set.
    record();
    let before = rss_kib();
    for _ in 0..SECONDS {
        record();
    }
    let grown_mib = rss_kib().saturating_sub(before) as f64 / 1024.0;
    // Kept, the 4 million samples would take about 33 MiB; folded every second, no more than
    // a few seconds' worth is ever waiting.
    assert!(
        grown_mib < 12.0,
        "{} samples, never scraped, grew the process by {grown_mib:.1} MiB",
        PER_SECOND * SECONDS
    );
}
