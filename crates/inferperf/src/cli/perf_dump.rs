//! `inferperf perf-dump compare|show`: SGLang's `compare_perf.py` report for two perf dumps, and
//! a terminal view of one dump (stage bars, denoising-step spikes).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use inferperf_protocol::perf_dump::PerfDump;

#[derive(clap::Subcommand, Debug)]
pub enum PerfDumpCommand {
    /// Compare a baseline and a new perf dump (SGLang's `compare_perf.py`); prints Markdown.
    Compare(CompareArgs),
    /// Show one perf dump: per-stage bar chart and denoising-step spikes.
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Baseline dump.
    pub baseline: PathBuf,
    /// New dump.
    pub new: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    pub path: PathBuf,
    /// A step is a spike when it is more than K median absolute deviations above the median.
    #[arg(long, default_value_t = 5.0)]
    pub mad_k: f64,
    /// ... and at least this many milliseconds above the median (ignores sub-ms jitter).
    #[arg(long, default_value_t = 1.0)]
    pub min_spike_ms: f64,
    /// Width of the longest bar, in characters.
    #[arg(long, default_value_t = 40)]
    pub bar_width: usize,
}

pub fn run(cmd: PerfDumpCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PerfDumpCommand::Compare(a) => {
            let base = load(&a.baseline)?;
            let new = load(&a.new)?;
            print!("{}", compare_markdown(&base, &new));
        }
        PerfDumpCommand::Show(a) => {
            let dump = load(&a.path)?;
            print!("{}", show_text(&dump, a.mad_k, a.min_spike_ms, a.bar_width));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> anyhow::Result<PerfDump> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read perf dump {}", path.display()))?;
    PerfDump::from_json_str(&text)
        .with_context(|| format!("{} is not a valid perf dump", path.display()))
}

/// `compare_perf.py`'s overall status from the end-to-end change in percent.
fn overall_status(pct: f64) -> &'static str {
    if pct < -2.0 {
        "\u{2705} (Faster)"
    } else if pct > 2.0 {
        "\u{274C} (Slower)"
    } else {
        "\u{2796} (Similar)"
    }
}

/// Per-row status: red when slower by more than 10% and 120 ms, green when faster by as much.
fn row_status(base: f64, new: f64) -> &'static str {
    if new > (base * 1.1).max(base + 120.0) {
        "\u{1F534}"
    } else if new < (base * 0.9).min(base - 120.0) {
        "\u{1F7E2}"
    } else {
        "\u{26AA}\u{FE0F}"
    }
}

fn pct(base: f64, new: f64) -> f64 {
    if base > 0.0 {
        (new - base) / base * 100.0
    } else {
        0.0
    }
}

/// The Markdown report. Sections 1 and 2 follow `compare_perf.py` (summary with E2E, denoise
/// latency and throughput; stage rows shown when |diff| > 0.5 ms or either side > 100 ms, in the
/// new dump's order then baseline-only stages); section 3 (an inferperf addition) names the
/// denoising steps whose own change crosses the per-row thresholds.
pub fn compare_markdown(base: &PerfDump, new: &PerfDump) -> String {
    let mut s = String::new();
    let (b, n) = (base.total_duration_ms, new.total_duration_ms);
    let e2e_pct = pct(b, n);
    let (bd, nd) = (base.denoise_latency_ms(), new.denoise_latency_ms());
    let _ = writeln!(s, "### Performance Comparison Report\n");
    let _ = writeln!(s, "#### 1. High-level Summary");
    let _ = writeln!(s, "| Metric | Baseline | New | Diff | Status |");
    let _ = writeln!(s, "| :--- | :--- | :--- | :--- | :--- |");
    let _ = writeln!(
        s,
        "| **E2E Latency** | {b:.2} ms | {n:.2} ms | **{:+.2} ms** ({e2e_pct:+.1}%) | {} |",
        n - b,
        overall_status(e2e_pct)
    );
    let dpct = pct(bd, nd);
    let _ = writeln!(
        s,
        "| **Denoise Latency** | {bd:.2} ms | {nd:.2} ms | **{:+.2} ms** ({dpct:+.1}%) | {} |",
        nd - bd,
        overall_status(dpct)
    );
    let tput = |ms: f64| if ms > 0.0 { 1000.0 / ms } else { 0.0 };
    let _ = writeln!(
        s,
        "| **Throughput** | {:.2} req/s | {:.2} req/s | - | - |\n",
        tput(b),
        tput(n)
    );

    let _ = writeln!(s, "#### 2. Stage Breakdown");
    let _ = writeln!(
        s,
        "| Stage Name | Baseline (ms) | New (ms) | Diff (ms) | Diff (%) | Status |"
    );
    let _ = writeln!(s, "| :--- | :--- | :--- | :--- | :--- | :--- |");
    let base_rows = base.stage_rows();
    let new_rows = new.stage_rows();
    let mut names: Vec<&str> = new_rows.iter().map(|r| r.name.as_str()).collect();
    for r in &base_rows {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    for name in names {
        let find = |rows: &[inferperf_protocol::perf_dump::StageRow]| {
            rows.iter()
                .find(|r| r.name == name)
                .map(|r| (r.duration_ms, r.count))
        };
        let (bv, bc) = find(&base_rows).unwrap_or((0.0, 0));
        let (nv, nc) = find(&new_rows).unwrap_or((0.0, 0));
        let diff = nv - bv;
        if diff.abs() <= 0.5 && bv <= 100.0 && nv <= 100.0 {
            continue;
        }
        let label = if nc.max(bc) > 0 {
            format!("{name} ({} steps)", nc.max(bc))
        } else {
            name.to_string()
        };
        let _ = writeln!(
            s,
            "| {label} | {bv:.2} | {nv:.2} | {diff:+.2} | {:+.1}% | {} |",
            pct(bv, nv),
            row_status(bv, nv)
        );
    }

    let _ = writeln!(s, "\n#### 3. Denoising Steps");
    let steps = base.denoise_steps_ms.len().min(new.denoise_steps_ms.len());
    let flagged: Vec<(usize, f64, f64)> = (0..steps)
        .map(|i| {
            (
                i,
                base.denoise_steps_ms[i].duration_ms,
                new.denoise_steps_ms[i].duration_ms,
            )
        })
        .filter(|&(_, bv, nv)| row_status(bv, nv) != row_status(0.0, 0.0))
        .collect();
    if base.denoise_steps_ms.len() != new.denoise_steps_ms.len() {
        let _ = writeln!(
            s,
            "Step counts differ: baseline {}, new {} (first {steps} compared).",
            base.denoise_steps_ms.len(),
            new.denoise_steps_ms.len()
        );
    }
    if flagged.is_empty() {
        let _ = writeln!(s, "All {steps} steps within thresholds.");
    } else {
        let _ = writeln!(
            s,
            "| Step | Baseline (ms) | New (ms) | Diff (ms) | Diff (%) | Status |"
        );
        let _ = writeln!(s, "| :--- | :--- | :--- | :--- | :--- | :--- |");
        for (i, bv, nv) in &flagged {
            let _ = writeln!(
                s,
                "| {i} | {bv:.2} | {nv:.2} | {:+.2} | {:+.1}% | {} |",
                nv - bv,
                pct(*bv, *nv),
                row_status(*bv, *nv)
            );
        }
        let _ = writeln!(
            s,
            "{} of {steps} steps within thresholds.",
            steps - flagged.len()
        );
    }

    let _ = writeln!(s, "\n<details>\n<summary>Metadata</summary>\n");
    let _ = writeln!(s, "- Baseline Commit: `{}`", base.commit_hash);
    let _ = writeln!(s, "- New Commit: `{}`", new.commit_hash);
    let _ = writeln!(s, "- Baseline Timestamp: {}", base.timestamp);
    let _ = writeln!(s, "- New Timestamp: {}", new.timestamp);
    let _ = writeln!(s, "\n</details>");
    s
}

/// A denoising step far above the others.
#[derive(Clone, Debug, PartialEq)]
pub struct Spike {
    pub step: u64,
    pub duration_ms: f64,
    pub median_ms: f64,
    /// How many MADs above the median (infinite when the MAD is zero).
    pub mads: f64,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Steps more than `k` median absolute deviations above the median step time and at least
/// `min_ms` above it.
pub fn spikes(dump: &PerfDump, k: f64, min_ms: f64) -> Vec<Spike> {
    let mut xs: Vec<f64> = dump
        .denoise_steps_ms
        .iter()
        .map(|s| s.duration_ms)
        .collect();
    let med = median(&mut xs);
    let mut dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&mut dev);
    dump.denoise_steps_ms
        .iter()
        .filter_map(|s| {
            let over = s.duration_ms - med;
            let mads = if mad > 0.0 { over / mad } else { f64::INFINITY };
            (over >= min_ms && over > k * mad).then_some(Spike {
                step: s.step,
                duration_ms: s.duration_ms,
                median_ms: med,
                mads,
            })
        })
        .collect()
}

/// The `show` view: header, one bar per stage with its share of the end-to-end time, spikes.
pub fn show_text(dump: &PerfDump, k: f64, min_ms: f64, bar_width: usize) -> String {
    let mut s = String::new();
    let total = dump.total_duration_ms;
    let _ = writeln!(
        s,
        "Perf dump {} ({}, {}, commit {})",
        dump.request_id, dump.tag, dump.timestamp, dump.commit_hash
    );
    let mut line = format!(
        "E2E {total:.2} ms | denoise {:.2} ms over {} steps",
        dump.denoise_latency_ms(),
        dump.denoise_steps_ms.len()
    );
    if let Some(peak) = dump.peak_memory_mb() {
        let _ = write!(line, " | peak memory {peak:.2} MB");
    }
    let _ = writeln!(s, "{line}\n");
    let rows = dump.stage_rows();
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let max = rows.iter().map(|r| r.duration_ms).fold(0.0, f64::max);
    let _ = writeln!(s, "{:<name_w$} {:>10} {:>7}", "Stage", "ms", "share");
    for r in &rows {
        let share = if total > 0.0 {
            r.duration_ms / total * 100.0
        } else {
            0.0
        };
        let len = if max > 0.0 {
            (r.duration_ms / max * bar_width as f64).round() as usize
        } else {
            0
        };
        let _ = writeln!(
            s,
            "{:<name_w$} {:>10.2} {:>6.1}% {}",
            r.name,
            r.duration_ms,
            share,
            "#".repeat(len)
        );
    }
    let found = spikes(dump, k, min_ms);
    if found.is_empty() {
        let _ = writeln!(
            s,
            "\nNo denoising-step spikes (> {k} MAD above the median)."
        );
    } else {
        let _ = writeln!(s, "\nDenoising-step spikes (> {k} MAD above the median):");
        for sp in &found {
            let _ = writeln!(
                s,
                "  step {}: {:.2} ms (+{:.2} ms over the median {:.2} ms, {:.1} MAD)",
                sp.step,
                sp.duration_ms,
                sp.duration_ms - sp.median_ms,
                sp.median_ms,
                sp.mads
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::generate::{generate, GenerateArgs};
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    fn dump_of_run(dir: &Path, name: &str, delay: Option<&str>) -> PerfDump {
        let dump = dir.join(format!("{name}.json"));
        let out = dir.join(format!("{name}.png"));
        let mut argv = vec![
            "generate".to_string(),
            "--prompt".into(),
            "a steam train".into(),
            "--num-inference-steps".into(),
            "6".into(),
            "--perf-dump-path".into(),
            dump.to_string_lossy().into_owned(),
            "--output-path".into(),
            out.to_string_lossy().into_owned(),
        ];
        if let Some(d) = delay {
            argv.push("--inferperf-diffusion-test-delay".into());
            argv.push(d.into());
        }
        generate(&TestCli::try_parse_from(argv).unwrap().args).unwrap();
        load(&dump).unwrap()
    }

    #[test]
    fn compare_flags_a_step_made_slower_on_purpose_and_show_names_it() {
        let dir = std::env::temp_dir().join(format!("inferperf-pdc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dump_of_run(&dir, "base", None);
        let slow = dump_of_run(&dir, "slow", Some("3:400"));
        std::fs::remove_dir_all(&dir).unwrap();

        // The injected delay really ran (a sleep is a lower bound, not a timing guess).
        let step3 = |d: &PerfDump| {
            d.denoise_steps_ms
                .iter()
                .find(|s| s.step == 3)
                .map(|s| s.duration_ms)
                .unwrap_or_default()
        };
        assert!(step3(&slow) >= 400.0, "{:?}", slow.denoise_steps_ms);

        // The comparison is judged on the base run and a copy made 400 ms slower at step 3,
        // so a stall of the machine during the base run cannot change the verdict.
        let mut slower = base.clone();
        for s in &mut slower.denoise_steps_ms {
            if s.step == 3 {
                s.duration_ms += 400.0;
            }
        }
        for s in &mut slower.steps {
            if s.name == "DenoisingStage" {
                s.duration_ms += 400.0;
            }
        }
        slower.total_duration_ms += 400.0;
        let md = compare_markdown(&base, &slower);
        assert!(md.starts_with("### Performance Comparison Report"), "{md}");
        let line = |prefix: &str| {
            md.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} row in\n{md}"))
                .to_string()
        };
        assert!(line("| **E2E Latency**").contains("(Slower)"), "{md}");
        assert!(line("| DenoisingStage").contains('\u{1F534}'), "{md}");
        assert!(line("| 3 |").contains('\u{1F534}'), "{md}");

        let text = show_text(&slow, 5.0, 1.0, 20);
        assert!(text.contains("DenoisingStage"), "{text}");
        let found = spikes(&slow, 5.0, 1.0);
        assert!(found.iter().any(|s| s.step == 3), "{found:?}");
        assert!(text.contains("step 3:"), "{text}");

        // Comparing a dump with itself changes nothing.
        let same = compare_markdown(&base, &base);
        assert!(same.contains("(Similar)") && same.contains("All 6 steps within thresholds."));
    }

    #[test]
    fn spikes_use_the_median_absolute_deviation() {
        let mut d = PerfDump::from_json_str(
            r#"{"timestamp":"t","request_id":"r","commit_hash":"N/A","tag":"x",
                "total_duration_ms":100,"steps":[],"denoise_steps_ms":[]}"#,
        )
        .unwrap();
        let times = [10.0, 11.0, 10.5, 9.5, 30.0, 10.2, 10.8];
        d.denoise_steps_ms = times
            .iter()
            .enumerate()
            .map(
                |(i, &t)| inferperf_protocol::perf_dump::DenoiseStepDuration {
                    step: i as u64,
                    duration_ms: t,
                },
            )
            .collect();
        let found = spikes(&d, 5.0, 1.0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].step, 4);
        assert!(spikes(&d, 5.0, 25.0).is_empty());
    }

    #[test]
    fn row_thresholds_follow_compare_perf() {
        assert_eq!(row_status(1000.0, 1119.0), "\u{26AA}\u{FE0F}");
        assert_eq!(row_status(1000.0, 1121.0), "\u{1F534}");
        assert_eq!(row_status(10.0, 129.0), "\u{26AA}\u{FE0F}");
        assert_eq!(row_status(10.0, 131.0), "\u{1F534}");
        assert_eq!(row_status(1000.0, 870.0), "\u{1F7E2}");
        assert_eq!(overall_status(-2.5), "\u{2705} (Faster)");
        assert_eq!(overall_status(1.0), "\u{2796} (Similar)");
    }
}
