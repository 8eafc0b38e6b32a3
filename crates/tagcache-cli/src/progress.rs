//! Progress on stderr for long operator commands: drawn only on a
//! terminal, never with `-q`, and only once the work has run for a moment,
//! so quick commands print nothing but their result.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before its progress appears.
const DELAY: Duration = Duration::from_millis(500);

/// A spinner or bar that stays hidden until [`DELAY`] has passed.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    quiet: bool,
    shown: AtomicBool,
}

impl Progress {
    /// A spinner with a message and the elapsed time.
    pub fn spinner(quiet: bool, message: impl Into<String>) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(style("{spinner} {msg} ({elapsed})"));
        bar.set_message(message.into());
        Self::wrap(bar, quiet)
    }

    /// A bar towards `len` (its length may grow), with a message.
    pub fn bar(quiet: bool, len: u64) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_length(len);
        bar.set_style(style("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})"));
        Self::wrap(bar, quiet)
    }

    fn wrap(bar: ProgressBar, quiet: bool) -> Self {
        Self {
            bar,
            started: Instant::now(),
            quiet,
            shown: AtomicBool::new(false),
        }
    }

    /// Shows the display once the delay has passed; true on the call that
    /// shows it (the moment to compute anything only the display needs).
    pub fn tick(&self) -> bool {
        if self.quiet || self.started.elapsed() < DELAY || self.shown.swap(true, Ordering::Relaxed)
        {
            return false;
        }
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(100));
        !self.bar.is_hidden()
    }

    /// Replaces the message.
    pub fn message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Moves the bar to `pos`, stretching its length when `pos` is past it.
    pub fn position(&self, pos: u64) {
        if self.bar.length().is_some_and(|len| pos > len) {
            self.bar.set_length(pos);
        }
        self.bar.set_position(pos);
    }

    /// Sets the bar's length.
    pub fn length(&self, len: u64) {
        self.bar.set_length(len.max(self.bar.position()));
    }

    /// Runs `f` (which prints to the terminal) with the display cleared,
    /// redrawing it after.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the display.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

/// Runs `work` with a spinner that appears if it takes long.
pub async fn spin_while<T>(quiet: bool, message: &str, work: impl Future<Output = T>) -> T {
    let progress = Progress::spinner(quiet, message);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep(DELAY) => { progress.tick(); }
        }
    }
}
