//! Handing freed memory back to the kernel. glibc's allocator keeps what a thread frees in
//! that thread's arena for its next allocation, returning only the top of each heap; with a
//! thread per SQLite connection and the runtime's worker and blocking threads all allocating,
//! a long-running server's resident memory crept up by some 30 MiB in a 10-minute soak with
//! nothing live to show for it (a heap profile found no growing allocation but SQLite's
//! bounded page caches). `malloc_trim(0)` gives every arena's free pages back; run every
//! [`TRIM_EVERY`], it keeps the server's memory flat (BENCHMARKS.md, Soak). The binary has
//! since put Rust's allocations on jemalloc (`main.rs`), which hands its own pages back; glibc
//! still serves SQLite (its page caches) and the image codecs, and this still trims it.
//!
//! This is the one `unsafe` call in the workspace (its lint is `deny`, allowed here alone).

use std::time::Duration;

/// How often the allocator is trimmed. A trim walks every arena, holding each one's lock
/// while it does (1–2 ms in all during the soak), so every 10 s costs nothing measurable.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Starts a thread that trims the allocator every [`TRIM_EVERY`] for the life of the process,
/// once however many servers the process runs (nothing to do off glibc: other allocators
/// return freed memory themselves).
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(start_trimmer);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            let started = std::time::Instant::now();
            let released = trim();
            tracing::trace!(
                released,
                took_us = started.elapsed().as_micros() as u64,
                "allocator trimmed"
            );
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the allocator trimming thread; freed memory stays with the allocator");
    }
}

/// `malloc_trim(0)`: whether glibc gave any memory back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers; glibc locks each arena while it walks it, so it
    // is safe beside any other allocation or free.
    unsafe { libc::malloc_trim(0) == 1 }
}
