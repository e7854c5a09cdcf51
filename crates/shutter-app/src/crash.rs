//! Crash points for the fault-injection tests: when `SHUTTER_KILL_AT` names a point, the
//! process sends itself `SIGKILL` on reaching it — no unwinding, no flushing, no destructors,
//! exactly what `kill -9` or a power cut does between two steps. Unset (always, outside those
//! tests), a point costs one comparison with a value read once.
//!
//! The points sit between the steps whose order makes a crash safe; the tests in
//! `tests/api/crash_points.rs` kill the server at each and check what survives a restart.
//!
//! Pause points are the same for races: when `SHUTTER_PAUSE_AT` names one, every request
//! reaching it waits [`PAUSE`] there, holding open the window between two steps that a
//! concurrent request must not slip into.

use std::sync::OnceLock;

/// Every byte of an upload is written and synced; nothing is checked or committed yet.
pub const UPLOAD_RECEIVED: &str = "upload.received";
/// The upload's object is committed; the database does not know it yet.
pub const UPLOAD_COMMITTED: &str = "upload.committed";
/// A photo's variants are stored; the file is still `processing`.
pub const JOB_VARIANTS_STORED: &str = "job.variants_stored";
/// The photo is `ready`; its post has not been looked at yet.
pub const JOB_FILE_READY: &str = "job.file_ready";

/// A tus PATCH has checked `Upload-Offset` against the upload; it has not written yet.
pub const TUS_OFFSET_CHECKED: &str = "tus.offset_checked";

/// How long a request waits at the pause point `SHUTTER_PAUSE_AT` names.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Waits [`PAUSE`] here if `SHUTTER_PAUSE_AT` is `point`.
pub(crate) async fn pause(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if names(&AT, "SHUTTER_PAUSE_AT", point) {
        tokio::time::sleep(PAUSE).await;
    }
}

/// Whether the environment variable `var` (read once into `at`) names `point`.
fn names(at: &OnceLock<Option<String>>, var: &str, point: &str) -> bool {
    at.get_or_init(|| std::env::var(var).ok()).as_deref() == Some(point)
}

/// Kills the process here if `SHUTTER_KILL_AT` is `point`.
pub(crate) fn point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if !names(&AT, "SHUTTER_KILL_AT", point) {
        return;
    }
    tracing::warn!(point, "SHUTTER_KILL_AT: the process kills itself");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` missing or refused: die as abruptly anyway.
    std::process::abort();
}
