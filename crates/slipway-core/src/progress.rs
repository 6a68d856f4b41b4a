//! Progress for people, on stderr: a spinner line per task on a terminal,
//! plain timestamped lines in CI or when stderr is piped, nothing under `-q`.
//!
//! Tasks may run concurrently (independent builds, several hosts); each gets
//! its own line, and the plain form prefixes every line with the task's name.
//! Byte transfers (a blob copied between registries) get a bar with bytes,
//! total and rate on a terminal, and one line when they end elsewhere (never
//! a carriage-return animation in a log); [`Progress::table`] prints a
//! closing summary.

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

    /// Starts a transfer of `total` bytes named `name` (a short digest):
    /// on a terminal a byte bar appears once the first bytes move (a
    /// transfer that moves none shows no bar); see [`Transfer`].
    pub fn transfer(&self, name: &str, total: u64) -> Transfer {
        Transfer {
            name: name.to_owned(),
            total,
            mode: self.mode.clone(),
            bar: OnceLock::new(),
            started: Instant::now(),
        }
    }

    /// Prints a table, columns aligned: the first and last left-aligned,
    /// the others (numbers) right-aligned; one line per row as
    /// [`Progress::println`] prints them.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        if matches!(self.mode, Mode::Silent) {
            return;
        }
        for line in format_table(header, rows) {
            self.println(&line);
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

/// One byte transfer (a blob copied from one registry to another); shared
/// by reference with whatever reports the bytes (it is `Send + Sync`).
/// Dropping it unfinished (the transfer failed) clears its bar.
#[derive(Debug)]
pub struct Transfer {
    name: String,
    total: u64,
    mode: Mode,
    bar: OnceLock<ProgressBar>,
    started: Instant,
}

impl Transfer {
    /// `bytes` of the total have moved so far. On a terminal the first call
    /// shows the bar; elsewhere nothing is printed until [`Transfer::finish`].
    pub fn bytes(&self, bytes: u64) {
        if let Mode::Bars(multi) = &self.mode {
            self.bar
                .get_or_init(|| {
                    let bar = multi.add(ProgressBar::new(self.total));
                    bar.set_style(bar_style());
                    bar.set_prefix(safe(&self.name));
                    bar.reset_elapsed();
                    bar
                })
                .set_position(bytes);
        }
    }

    /// Ends the transfer: one line `<name>: <size> <outcome> (<time>)`,
    /// `outcome` saying what happened (`copied`, `mounted`, `already
    /// there`); on a terminal the bar gives way to `<name> ✓ <size>
    /// <outcome> (<time>)`.
    pub fn finish(&self, outcome: &str) {
        let text = transfer_line(self.total, outcome, self.started.elapsed());
        match &self.mode {
            // The bar gives way to a line above the bars still moving, so
            // the bars' area holds only transfers in flight.
            Mode::Bars(multi) => {
                if let Some(bar) = self.bar.get() {
                    bar.finish_and_clear();
                    multi.remove(bar);
                }
                let _ = multi.println(format!("{} ✓ {}", safe(&self.name), safe(&text)));
            }
            Mode::Lines => line(&self.name, &text),
            Mode::Silent => {}
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.get()
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// The bar of a transfer: name, bar, bytes of total, rate, time left.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, eta {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// What a finished transfer's line says after its name.
fn transfer_line(total: u64, outcome: &str, elapsed: Duration) -> String {
    format!(
        "{} {outcome} ({})",
        format_bytes(total),
        format_duration(elapsed)
    )
}

/// Formats a byte count for people, in binary units: `618 B`, `3.00 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    HumanBytes(bytes).to_string()
}

/// The lines of a table: columns padded to their widest cell, the first
/// and last left-aligned, the others right-aligned, two spaces apart.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let columns = header.len();
    let cells = |row: &[String]| -> Vec<String> {
        (0..columns)
            .map(|i| row.get(i).cloned().unwrap_or_default())
            .collect()
    };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(rows.iter().map(|row| cells(row)));
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .map(|line| line[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    lines
        .iter()
        .map(|line| {
            let padded: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let width = widths[i];
                    if i == 0 || i + 1 == columns {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_owned()
        })
        .collect()
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
    fn tables_align_names_left_and_numbers_right() {
        let rows = [
            vec![
                "sha256:0123456789ab linux/amd64".to_owned(),
                "0".to_owned(),
                "3.00 MiB".to_owned(),
                "1.2s".to_owned(),
            ],
            vec![
                "total".to_owned(),
                "12".to_owned(),
                "618 B".to_owned(),
                "850ms".to_owned(),
            ],
        ];
        assert_eq!(
            format_table(&["image", "copied", "bytes", "time"], &rows),
            [
                "image                            copied     bytes  time",
                "sha256:0123456789ab linux/amd64       0  3.00 MiB  1.2s",
                "total                                12     618 B  850ms",
            ]
        );
        assert_eq!(format_bytes(618), "618 B");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.00 MiB");
    }

    /// A terminal that keeps what is drawn on it, for the bars' tests.
    #[derive(Debug, Clone, Default)]
    struct Screen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Screen {
        /// What was drawn, without the blank padding that erases a
        /// longer line.
        fn lines(&self) -> Vec<String> {
            let drawn = self.0.lock().unwrap();
            drawn
                .iter()
                .filter(|line| !line.trim().is_empty())
                .cloned()
                .collect()
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, text: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(text.to_owned());
            Ok(())
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            self.write_line(text)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// On a terminal, a transfer draws a byte bar once bytes move (name,
    /// bar, bytes of total, rate, time left) and ends as one line; one that
    /// moves nothing draws no bar, only its line.
    #[test]
    fn a_transfer_draws_a_byte_bar_on_a_terminal_then_its_line() {
        let screen = Screen::default();
        let progress = Progress {
            mode: Mode::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::term_like(Box::new(screen.clone())),
            )),
        };
        let mib = 1024 * 1024;
        let transfer = progress.transfer("sha256:0123456789ab", 4 * mib);
        assert_eq!(
            screen.lines(),
            Vec::<String>::new(),
            "no bar before bytes move"
        );
        transfer.bytes(mib);
        let drawn = screen.lines();
        let bar = drawn.last().expect("a bar is drawn");
        let shape = regex::Regex::new(
            r"^sha256:0123456789ab \[={7}> {22}\] 1\.00 MiB/4\.00 MiB [0-9.]+ [KMGT]?i?B/s, eta [0-9]+[smhd]$",
        )
        .unwrap();
        assert!(shape.is_match(bar), "{drawn:?}");
        transfer.finish("copied");
        let last = screen.lines().last().cloned().unwrap_or_default();
        let done =
            regex::Regex::new(r"^sha256:0123456789ab ✓ 4\.00 MiB copied \([0-9]+ms\) *$").unwrap();
        assert!(done.is_match(&last), "{:?}", screen.lines());

        let mounted = progress.transfer("sha256:ba9876543210", 618);
        mounted.finish("mounted");
        let last = screen.lines().last().cloned().unwrap_or_default();
        let done =
            regex::Regex::new(r"^sha256:ba9876543210 ✓ 618 B mounted \([0-9]+ms\) *$").unwrap();
        assert!(done.is_match(&last), "{:?}", screen.lines());
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
