//! [`FailurePause`]: how an adapter of a backend a node can run without (Redis, the event
//! relay) stops waiting on it while it is away, and logs its loss and return once each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After a failure, the backend is not asked again for a while.
#[derive(Debug, Default)]
pub struct FailurePause {
    failing: AtomicBool,
    until: Mutex<Option<Instant>>,
}

impl FailurePause {
    /// Whether the backend failed less than the pause ago (skip it).
    pub fn paused(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|until| *until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Records a failure and pauses for `pause`; `true` when it is the first since the
    /// backend last answered (log it then).
    pub fn failed(&self, pause: Duration) -> bool {
        if let Ok(mut until) = self.until.lock() {
            *until = Some(Instant::now() + pause);
        }
        !self.failing.swap(true, Ordering::Relaxed)
    }

    /// Records an answer; `true` when the backend had been failing (log its return).
    pub fn answered(&self) -> bool {
        self.failing.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_pauses_and_is_reported_once_as_is_the_return() {
        let pause = FailurePause::default();
        assert!(!pause.paused());
        assert!(pause.failed(Duration::from_secs(60)));
        assert!(pause.paused());
        assert!(!pause.failed(Duration::from_millis(0)), "reported once");
        assert!(!pause.paused(), "a zero pause is over");
        assert!(pause.answered());
        assert!(!pause.answered(), "reported once");
    }
}
