//! Progress: live bars per table on a terminal, plain log lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where progress goes.
pub struct Progress {
    bars: Option<MultiProgress>,
}

/// Progress of one table.
pub struct TableProgress {
    name: String,
    bar: Option<ProgressBar>,
    rows: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// Bars when stderr is a terminal and `enabled`; log lines otherwise.
    pub fn new(enabled: bool) -> Progress {
        let bars = (enabled && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Progress { bars }
    }

    pub fn is_live(&self) -> bool {
        self.bars.is_some()
    }

    /// Start tracking a table; `estimate` is the expected bytes, if known.
    pub fn table(&self, name: &str, estimate: Option<u64>) -> TableProgress {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(match estimate {
                Some(n) if n > 0 => ProgressBar::new(n),
                _ => ProgressBar::no_length(),
            });
            let style = ProgressStyle::with_template(
                "{prefix:<32} {bar:20} {binary_bytes:>10} {msg} {binary_bytes_per_sec:>12}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        if bar.is_none() {
            tracing::info!(table = name, "started");
        }
        TableProgress {
            name: name.to_string(),
            bar,
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Print a line above the bars (or to the log).
    pub fn println(&self, line: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

impl TableProgress {
    /// Record a transformed part.
    pub fn advance(&self, rows: u64, bytes: u64) {
        let total_rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match &self.bar {
            Some(bar) => {
                if bar.length().is_some_and(|len| total_bytes > len) {
                    bar.set_length(total_bytes);
                }
                bar.set_position(total_bytes);
                bar.set_message(format!("{total_rows} rows"));
            }
            None => {
                let Ok(mut last) = self.last_log.lock() else {
                    return;
                };
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                    tracing::info!(
                        table = %self.name,
                        rows = total_rows,
                        bytes = total_bytes,
                        rows_per_sec = (total_rows as f64 / secs) as u64,
                        "progress"
                    );
                }
            }
        }
    }

    /// The table ended: `outcome` is a short word (loaded, failed …).
    pub fn finish(&self, outcome: &str, rows: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{rows} rows {outcome}"));
                bar.finish();
            }
            None => tracing::info!(
                table = %self.name,
                rows,
                bytes = self.bytes.load(Ordering::Relaxed),
                seconds = format!("{:.2}", self.started.elapsed().as_secs_f64()),
                outcome,
                "finished"
            ),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
