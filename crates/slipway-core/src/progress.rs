//! Progress for people, on stderr: a spinner line per task on a terminal,
//! plain timestamped lines in CI or when stderr is piped, nothing under `-q`.
//!
//! Tasks may run concurrently (independent builds, several hosts); each gets
//! its own line, and the plain form prefixes every line with the task's name.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown for one run.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Silent,
    Lines,
    Bars(MultiProgress),
}

impl Progress {
    /// Bars when `interactive` (stderr is a terminal, not CI), lines
    /// otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, interactive: bool) -> Progress {
        let mode = if quiet {
            Mode::Silent
        } else if interactive {
            Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// Progress that shows nothing (for library callers and tests).
    pub fn silent() -> Progress {
        Progress { mode: Mode::Silent }
    }

    /// Starts a task named `name` (an image, a host, a URL) with a first
    /// message.
    pub fn task(&self, name: &str, message: &str) -> Task {
        let bar = match &self.mode {
            Mode::Bars(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:.bold} {wide_msg} {elapsed:.dim}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(safe(name));
                bar.set_message(safe(message));
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Mode::Lines => {
                line(name, message);
                None
            }
            Mode::Silent => None,
        };
        Task {
            name: name.to_owned(),
            is_silent: matches!(self.mode, Mode::Silent),
            bar,
            started: Instant::now(),
        }
    }

    /// Prints a line above any bars (or as a timestamped line), unless quiet.
    pub fn println(&self, text: &str) {
        match &self.mode {
            Mode::Bars(multi) => {
                let _ = multi.println(safe(text));
            }
            Mode::Lines => {
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "{} {}", timestamp(), safe(text));
            }
            Mode::Silent => {}
        }
    }
}

/// One task's line. Finish it with [`Task::finish`] or [`Task::fail`];
/// dropping it unfinished clears the line.
#[derive(Debug)]
pub struct Task {
    name: String,
    is_silent: bool,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Task {
    /// Replaces the task's message.
    pub fn message(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(safe(message)),
            None if !self.is_silent => line(&self.name, message),
            None => {}
        }
    }

    /// How long the task has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the task as done, with a last message and its duration.
    pub fn finish(self, message: &str) {
        self.end("✓", message);
    }

    /// Ends the task as failed, with the reason.
    pub fn fail(self, message: &str) {
        self.end("✗", message);
    }

    fn end(mut self, mark: &str, message: &str) {
        let text = format!("{message} ({})", format_duration(self.started.elapsed()));
        match self.bar.take() {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(format!("{mark} {}", safe(&text)));
            }
            None if !self.is_silent => line(&self.name, &text),
            None => {}
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Formats a duration for people: `850ms`, `12.3s`, `2m05s`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

fn line(name: &str, message: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{} {}: {}", timestamp(), safe(name), safe(message));
}

/// A progress text as it may be shown: secrets redacted, control
/// characters escaped (a name or a server's answer cannot start a line).
fn safe(text: &str) -> String {
    crate::output::escape_control(&crate::secret::redact(text)).into_owned()
}

fn timestamp() -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(millis: u64, expected: &str) {
        assert_eq!(format_duration(Duration::from_millis(millis)), expected);
    }

    #[test]
    fn durations_read_naturally() {
        check(0, "0ms");
        check(850, "850ms");
        check(1_000, "1.0s");
        check(12_345, "12.3s");
        check(125_000, "2m05s");
    }
}
