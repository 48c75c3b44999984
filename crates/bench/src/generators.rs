//! `mirage-bench generators`: values per second of every generator on one core.

use mirage_generators::samples::{sample, sample_stats};
use mirage_generators::{ColumnContext, Prf};
use std::time::Instant;

/// Values/s of each generator over `n` values on the current thread, as a Markdown table.
pub fn run(n: usize) -> String {
    let prf = Prf::from_seed("bench");
    let mut md = format!("| generator | values/s (1 core, {n} values) |\n| --- | ---: |\n");
    for info in mirage_generators::catalogue() {
        let (ty, opts, _) = sample(info.name, 0);
        let opts: toml::Table = match toml::from_str(opts) {
            Ok(t) => t,
            Err(e) => {
                md += &format!("| `{}` | (bad sample options: {e}) |\n", info.name);
                continue;
            }
        };
        let stats = sample_stats(info.name);
        let ctx = ColumnContext {
            table: "bench.t",
            column: "c",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: stats.as_ref(),
        };
        let Ok(g) = mirage_generators::build(info.name, &opts, &ctx, &prf) else {
            md += &format!(
                "| `{}` | (needs other columns; not measured alone) |\n",
                info.name
            );
            continue;
        };
        let inputs: Vec<String> = (0..n).map(|i| sample(info.name, i).2).collect();
        let mut out = String::with_capacity(256);
        let start = Instant::now();
        let mut written = 0usize;
        for v in &inputs {
            out.clear();
            if g.generate(Some(v), &mut out).is_ok() {
                written += out.len();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(written);
        md += &format!("| `{}` | {:.0} |\n", info.name, n as f64 / secs);
    }
    md
}
