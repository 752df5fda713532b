//! What the operator sees of a warm run: on a terminal a progress bar
//! (generated, cached, failed, of the total, with an ETA) and each failed
//! item above it; elsewhere one tab-separated line per item as it is
//! answered (`INDEX STATUS IMAGE-ID|CODE: MESSAGE PROMPT`), for scripts and
//! logs. The counts, and the summary (on standard error). Decides nothing
//! about exit statuses (`warm::run` does, from the counts).

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::answer::Outcome;
use super::item::{clip, Item};

/// How many items ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub generated: usize,
    pub cached: usize,
    pub failed: usize,
    pub total: usize,
}

impl Tally {
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Generated { .. } => self.generated += 1,
            Outcome::Cached { .. } => self.cached += 1,
            Outcome::Failed { .. } => self.failed += 1,
        }
    }

    pub fn answered(&self) -> usize {
        self.generated + self.cached + self.failed
    }

    /// The summary line.
    pub fn summary(&self, took: Duration) -> String {
        let mut line = format!(
            "warm: {} generated, {} cached, {} failed of {} items in {:.1} s",
            self.generated,
            self.cached,
            self.failed,
            self.total,
            took.as_secs_f64()
        );
        let unanswered = self.total - self.answered();
        if unanswered > 0 {
            line.push_str(&format!("; {unanswered} not answered"));
        }
        line
    }
}

/// Longest prompt shown on an item's line.
pub const PROMPT_CHARS: usize = 60;

/// An item's line: index, status, image id or `code: message`, prompt.
pub fn plain_line(index: usize, item: &Item, outcome: &Outcome) -> String {
    let detail = match outcome {
        Outcome::Cached { image_id } | Outcome::Generated { image_id } => clip(image_id, 80),
        Outcome::Failed { code, message } => format!("{}: {}", clip(code, 40), clip(message, 200)),
    };
    format!("{index}\t{}\t{detail}\t{}", outcome.status(), clip(item.label(), PROMPT_CHARS))
}

pub struct Report {
    shown: Shown,
    pub tally: Tally,
    started: Instant,
}

enum Shown {
    Bar(ProgressBar),
    Plain(Box<dyn Write>),
}

impl Report {
    /// A progress bar when standard output is a terminal, lines otherwise.
    pub fn for_stdout(total: usize) -> Report {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            Report::bar(total, ProgressDrawTarget::stdout())
        } else {
            Report::plain(total, Box::new(std::io::stdout()))
        }
    }

    pub fn plain(total: usize, out: Box<dyn Write>) -> Report {
        Report {
            shown: Shown::Plain(out),
            tally: Tally { total, ..Tally::default() },
            started: Instant::now(),
        }
    }

    fn bar(total: usize, target: ProgressDrawTarget) -> Report {
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        let style = ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        let report = Report {
            shown: Shown::Bar(bar),
            tally: Tally { total, ..Tally::default() },
            started: Instant::now(),
        };
        report.refresh();
        report
    }

    /// Item `index` (of the whole input) was answered.
    pub fn answered(&mut self, index: usize, item: &Item, outcome: &Outcome) {
        self.tally.count(outcome);
        match &mut self.shown {
            Shown::Plain(out) => {
                let _ = writeln!(out, "{}", plain_line(index, item, outcome));
                let _ = out.flush();
            }
            Shown::Bar(bar) => {
                if matches!(outcome, Outcome::Failed { .. }) {
                    bar.println(plain_line(index, item, outcome));
                }
                bar.inc(1);
            }
        }
        self.refresh();
    }

    fn refresh(&self) {
        if let Shown::Bar(bar) = &self.shown {
            let t = &self.tally;
            bar.set_message(format!("{} generated · {} cached · {} failed", t.generated, t.cached, t.failed));
        }
    }

    /// Stop showing progress; the summary line.
    pub fn finish(&mut self) -> String {
        if let Shown::Bar(bar) = &self.shown {
            bar.finish_and_clear();
        }
        self.tally.summary(self.started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_answer_is_one_tab_separated_line_and_counted() {
        let out = Shared::default();
        let mut report = Report::plain(3, Box::new(out.clone()));
        let fox = Item::prompt("a red fox in the snow");
        report.answered(2, &fox, &Outcome::Generated { image_id: "i-2".into() });
        let long = Item::prompt(&format!("a\tlong {}", "x".repeat(100)));
        let failed = Outcome::Failed { code: "budget_exceeded".into(), message: "spent\nfor now".into() };
        report.answered(0, &long, &failed);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2\tgenerated\ti-2\ta red fox in the snow");
        assert_eq!(lines[1], format!("0\terror\tbudget_exceeded: spent for now\ta long {}…", "x".repeat(53)));
        assert_eq!(report.tally, Tally { generated: 1, cached: 0, failed: 1, total: 3 });
    }

    #[test]
    fn the_summary_counts_each_ending_and_what_was_not_answered() {
        let t = Tally { generated: 12, cached: 2, failed: 0, total: 14 };
        assert_eq!(
            t.summary(Duration::from_millis(3400)),
            "warm: 12 generated, 2 cached, 0 failed of 14 items in 3.4 s"
        );
        let cut = Tally { generated: 1, cached: 0, failed: 1, total: 5 };
        assert!(cut.summary(Duration::ZERO).ends_with("; 3 not answered"));
    }
}
