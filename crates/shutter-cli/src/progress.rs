//! Progress bars (indicatif): one per file and a total. They draw on stderr only when it is a
//! terminal and `--json` is off; notices go through [`Bars::note`] so that they print above
//! the bars, or plainly to stderr when there are none.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
    visible: bool,
}

const FILE_TEMPLATE: &str =
    "{prefix:>24.bold} {msg:9} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}";
const TOTAL_TEMPLATE: &str =
    "{prefix:>24.bold} {msg:9} [{bar:30.green/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}";

impl Bars {
    /// Bars that draw when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Bars {
        let visible = wanted && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            visible,
        }
    }

    /// A bar of `len` bytes named `name`.
    pub fn file(&self, name: &str, len: u64) -> ProgressBar {
        self.add(name, len, FILE_TEMPLATE)
    }

    /// The total bar, of `len` bytes.
    pub fn total(&self, len: u64) -> ProgressBar {
        let bar = self.add("total", len, TOTAL_TEMPLATE);
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    fn add(&self, name: &str, len: u64, template: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(shorten(name, 24));
        bar
    }

    /// A line of the command's output on stdout, without tearing the bars.
    pub fn out(&self, line: &str) {
        if self.visible {
            self.multi.suspend(|| println!("{line}"));
        } else {
            println!("{line}");
        }
    }

    /// A line for the user on stderr, above the bars.
    pub fn note(&self, line: &str) {
        if self.visible {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// `name` cut to at most `max` characters, with an ellipsis in the middle.
fn shorten(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max {
        return name.to_owned();
    }
    let keep = max.saturating_sub(1);
    let head: String = name.chars().take(keep / 2).collect();
    let tail: String = name.chars().skip(count - (keep - keep / 2)).collect();
    format!("{head}…{tail}")
}

/// The bar of one file and the total bar, moved together: the total shows the bytes done of
/// the files before this one plus this one's position.
#[derive(Clone)]
pub struct Tracker {
    pub file: ProgressBar,
    pub total: ProgressBar,
    /// The total's position when this file started.
    pub base: u64,
}

impl Tracker {
    pub fn inc(&self, n: u64) {
        self.file.inc(n);
        self.total.inc(n);
    }

    /// Both bars to `pos` bytes of this file (after the server said where it stands).
    pub fn set(&self, pos: u64) {
        self.file.set_position(pos);
        self.total.set_position(self.base + pos);
    }

    /// Both bars to `pos` bytes of this file without counting the jump as bytes sent (a
    /// resumed upload: the server had those already), so that the rate and the ETA are
    /// measured from here.
    pub fn start_at(&self, pos: u64) {
        jump(&self.file, pos);
        jump(&self.total, self.base + pos);
    }
}

/// `bar` to `pos`, its rate and ETA measured from there on.
fn jump(bar: &ProgressBar, pos: u64) {
    bar.set_position(pos);
    // A new position reaches the rate estimator only on some updates; setting the length
    // (unchanged) is one that always passes it on. Resetting the ETA then makes it the
    // starting point of the estimate, rather than bytes sent.
    if let Some(len) = bar.length() {
        bar.set_length(len);
    }
    bar.reset_eta();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_to_the_resume_offset_is_not_counted_as_speed() {
        let bar = ProgressBar::hidden();
        bar.set_length(1_000_000_000);
        std::thread::sleep(Duration::from_millis(20));
        jump(&bar, 900_000_000);
        std::thread::sleep(Duration::from_millis(20));
        bar.inc(1000);
        bar.set_length(1_000_000_000);
        // Counted as sent, the jump would be tens of GB/s; 1000 bytes in ~20 ms is ~50 KB/s.
        assert!(bar.per_sec() < 1_000_000.0, "{}", bar.per_sec());
        assert_eq!(bar.position(), 900_001_000);
    }

    #[test]
    fn long_names_keep_both_ends() {
        assert_eq!(shorten("short.jpg", 24), "short.jpg");
        let s = shorten("a-very-long-file-name-of-a-photo.jpeg", 12);
        assert_eq!(s.chars().count(), 12);
        assert!(s.starts_with("a-ver"));
        assert!(s.ends_with("jpeg"));
    }
}
