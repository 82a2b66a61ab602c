//! Times `merge` and `collect` + `summarize` through the library, without the CLI (quick
//! profiling builds): `trace_bench merge OUT [--client FILE] IN...` or `trace_bench summary FILE`.

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
            // `--client FILE` anywhere after OUT: merge a client request trace too.
            let mut client = None;
            let mut inputs: Vec<PathBuf> = Vec::new();
            let mut it = args[2..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--client" => client = it.next().map(PathBuf::from),
                    _ => inputs.push(PathBuf::from(a)),
                }
            }
            let opts = MergeOptions {
                client,
                ..MergeOptions::default()
            };
            let r = merge_files(&inputs, &PathBuf::from(&args[1]), &opts).expect("merge");
            if let Some(c) = &r.client {
                eprintln!(
                    "client: {} requests, {} linked, {} unmatched, {} flow events",
                    c.requests, c.linked, c.unmatched, c.flow_events
                );
            }
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
        _ => eprintln!(
            "usage: trace_bench merge OUT [--client FILE] IN... | trace_bench summary FILE"
        ),
    }
}
