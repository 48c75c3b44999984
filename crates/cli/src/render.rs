//! Rendering a job's events: live bars per table on a terminal, plain log lines otherwise (no
//! escape codes unless colour is on), or JSON lines with `--format json`. Output errors (a
//! closed pipe) never stop a job: lines that cannot be written are dropped. Names and messages
//! come from the databases: bars and lines show their control characters escaped
//! ([`printable`]), one event per line.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mirage_core::display::printable;
use mirage_engine::{Event, Events, TableStatus};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always (even into a file or pipe).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether stderr gets colour.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }
}

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars on stderr.
    Bars,
    /// Log lines on stderr.
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

/// A line to stdout; a closed stdout is ignored.
pub fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}

/// A line to stderr; a closed stderr is ignored.
pub fn err(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// An error line to stderr: `error:` (red when colour is on) and the message, its control
/// characters escaped (its line breaks kept).
pub fn error(color: bool, message: &str) {
    err(&format!(
        "{} {}",
        paint(color, "31", "error:"),
        mirage_core::display::printable_lines(message)
    ));
}

/// Text in a colour (an SGR code) when colour is on.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

struct TableState {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
}

/// Shows a job's events.
pub struct Renderer {
    mode: Mode,
    color: bool,
    bars: Option<MultiProgress>,
    tables: Mutex<HashMap<String, TableState>>,
}

impl Renderer {
    /// Bars fall back to plain lines when stderr is not a terminal.
    pub fn new(mode: Mode, color: bool) -> Arc<Renderer> {
        let mode = if mode == Mode::Bars && !std::io::stderr().is_terminal() {
            Mode::Plain
        } else {
            mode
        };
        let bars = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Arc::new(Renderer {
            mode,
            color,
            bars,
            tables: Mutex::new(HashMap::new()),
        })
    }

    /// The callback the engine sends events to.
    pub fn events(self: &Arc<Self>) -> Events {
        let me = self.clone();
        Arc::new(move |e| me.show(e))
    }

    /// A line above the bars (or to stderr).
    pub fn line(&self, line: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(line);
            }
            None => err(line),
        }
    }

    fn show(&self, event: Event) {
        if self.mode == Mode::Json {
            if let Ok(text) = serde_json::to_string(&event) {
                out(&text);
            }
            return;
        }
        let Ok(mut tables) = self.tables.lock() else {
            return;
        };
        let now = Instant::now();
        match event {
            Event::TableStarted {
                table,
                estimate_bytes,
            } => {
                let bar = self.bars.as_ref().map(|m| {
                    let bar = m.add(match estimate_bytes {
                        Some(n) if n > 0 => ProgressBar::new(n),
                        _ => ProgressBar::no_length(),
                    });
                    let style = ProgressStyle::with_template(
                        "{prefix:<32} {bar:20} {binary_bytes:>10} {msg} {binary_bytes_per_sec:>12}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.set_prefix(printable(&table).into_owned());
                    bar.enable_steady_tick(Duration::from_millis(250));
                    bar
                });
                if bar.is_none() {
                    let est = estimate_bytes
                        .map(|b| format!(" (~{})", mirage_core::size::ByteSize(b)))
                        .unwrap_or_default();
                    err(&format!("{} started{est}", printable(&table)));
                }
                tables.insert(
                    table,
                    TableState {
                        bar,
                        started: now,
                        last_log: now,
                    },
                );
            }
            Event::TableProgress { table, rows, bytes } => {
                let Some(t) = tables.get_mut(&table) else {
                    return;
                };
                match &t.bar {
                    Some(bar) => {
                        if bar.length().is_some_and(|len| bytes > len) {
                            bar.set_length(bytes);
                        }
                        bar.set_position(bytes);
                        bar.set_message(format!("{rows} rows"));
                    }
                    None if now.duration_since(t.last_log) >= Duration::from_secs(5) => {
                        t.last_log = now;
                        let secs = now.duration_since(t.started).as_secs_f64().max(1e-3);
                        err(&format!(
                            "{} progress: {rows} rows, {} ({} rows/s)",
                            printable(&table),
                            mirage_core::size::ByteSize(bytes),
                            (rows as f64 / secs) as u64
                        ));
                    }
                    None => {}
                }
            }
            Event::TableFinished {
                table,
                status,
                rows,
                bytes,
                seconds,
                error,
            } => {
                let bar = tables.remove(&table).and_then(|t| t.bar);
                match bar {
                    Some(bar) => {
                        bar.set_message(format!("{rows} rows {}", status.as_str()));
                        bar.finish();
                    }
                    // Plain lines, or a table that never started (not loaded) above the bars.
                    None => self.line(&format!(
                        "{} {}: {rows} rows, {} in {seconds:.2} s",
                        printable(&table),
                        status.as_str(),
                        mirage_core::size::ByteSize(bytes)
                    )),
                }
                if let (Some(e), TableStatus::Failed | TableStatus::PostDataFailed) =
                    (error, status)
                {
                    drop(tables);
                    self.line(&format!(
                        "{} {}: {}",
                        paint(self.color, "31", "✗"),
                        printable(&table),
                        printable(&e)
                    ));
                }
            }
            Event::Warning { message } => {
                drop(tables);
                self.line(&format!(
                    "{} {}",
                    paint(self.color, "33", "warning:"),
                    printable(&message)
                ));
            }
            Event::Info { message } => {
                drop(tables);
                if self.bars.is_none() {
                    err(&printable(&message));
                }
            }
            Event::JobStarted { .. } | Event::Phase { .. } => {}
        }
    }
}
