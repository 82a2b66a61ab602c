//! Times `merge` and `collect` + `summarize` through the library, without the CLI (quick
//! profiling builds): `trace_bench merge OUT IN...` or `trace_bench summary FILE`.

use std::path::PathBuf;
use std::time::Instant;

use inferperf_trace::collect::{collect, CollectOptions};
use inferperf_trace::progress::Progress;
use inferperf_trace::summary::{summarize, SummaryOptions};
use inferperf_trace::taxonomy::Taxonomy;
use inferperf_trace::{merge_files, MergeOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t = Instant::now();
    match args.first().map(String::as_str) {
        Some("merge") if args.len() >= 3 => {
            let inputs: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            let r = merge_files(&inputs, &PathBuf::from(&args[1]), &MergeOptions::default())
                .expect("merge");
            eprintln!(
                "merged {} events in {:.3} s",
                r.events_out,
                t.elapsed().as_secs_f64()
            );
        }
        Some("summary") if args.len() == 2 => {
            let tax = Taxonomy::builtin();
            let d = collect(
                &PathBuf::from(&args[1]),
                &tax,
                &CollectOptions::default(),
                &Progress::hidden(),
            )
            .expect("collect");
            let rep = summarize(&[d], &tax, &SummaryOptions::default());
            eprintln!(
                "summarized {} events in {:.3} s",
                rep.traces.first().map_or(0, |s| s.events),
                t.elapsed().as_secs_f64()
            );
        }
        _ => eprintln!("usage: trace_bench merge OUT IN... | trace_bench summary FILE"),
    }
}
