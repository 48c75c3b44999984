//! `mirage check`'s text form: ✓/✗/! lines, each failure followed by its fix. The items come
//! from the connectors through the engine ([`mirage_engine::check`]), the same list `mirage run`
//! stops on. Items quote names and server messages: their control characters are escaped; a fix
//! keeps its lines.

use mirage_connectors::check::{Checks, Status};
use mirage_core::display::printable;
use std::fmt::Write;

/// ✓/✗/! lines, each failure followed by its fix, and a closing verdict.
pub fn text(checks: &Checks, color: bool) -> String {
    let paint = crate::render::paint;
    let mut s = String::new();
    for i in &checks.items {
        let mark = match i.status {
            Status::Pass => paint(color, "32", "✓"),
            Status::Fail => paint(color, "31", "✗"),
            Status::Warn => paint(color, "33", "!"),
        };
        let _ = writeln!(s, "{:<12} {mark} {}", i.area, printable(&i.check));
        if let Some(d) = &i.detail {
            let _ = writeln!(s, "{:<14} {}", "", printable(d));
        }
        if let Some(f) = &i.fix {
            for (n, line) in f.lines().enumerate() {
                let _ = writeln!(
                    s,
                    "{:<14} {} {}",
                    "",
                    if n == 0 { "fix:" } else { "    " },
                    printable(line)
                );
            }
        }
    }
    let failed = checks
        .items
        .iter()
        .filter(|i| i.status == Status::Fail)
        .count();
    let _ = write!(
        s,
        "{}",
        if failed == 0 {
            "everything a run needs is in place".to_string()
        } else {
            format!("{failed} item(s) to fix before `mirage run`")
        }
    );
    s
}
