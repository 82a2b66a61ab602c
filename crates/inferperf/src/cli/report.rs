//! `inferperf report ...`: Excel workbooks, plots and HTML pages from experiment folders
//! (`bench sweep`, genai-bench's layout) and `bench serving` result files (genai-bench's
//! `excel` and `plot`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use inferperf_report::error::write_atomic;
use inferperf_report::plot::Preset;
use inferperf_report::slow::SlowInputs;

#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Excel workbook with genai-bench's sheets.
    Excel(ExcelArgs),
    /// Plots with genai-bench's presets (PNG and SVG).
    Plot(PlotArgs),
    /// One self-contained HTML page with plots, tables, interactive charts and run metadata.
    ///
    /// The interactive charts (hover values, drag zoom, log2 concurrency axis, Pareto frontiers,
    /// TTFT/ITL CDFs, throughput over time with the steady-state window) are drawn by the
    /// embedded uPlot; the page works offline.
    Html(HtmlArgs),
}

/// `report excel` flags.
#[derive(clap::Args)]
pub struct ExcelArgs {
    /// Experiment folder, or a `bench serving` JSONL file.
    #[arg(long)]
    pub experiment_folder: PathBuf,
    /// Workbook name (default `{folder}_summary.xlsx` inside the folder, as genai-bench).
    #[arg(long)]
    pub excel_name: Option<String>,
}

/// `report plot` flags.
#[derive(clap::Args)]
pub struct PlotArgs {
    #[arg(long)]
    pub experiment_folder: PathBuf,
    #[arg(long, value_enum, default_value = "2x4_default")]
    pub preset: Preset,
    /// Directory for the plot (default: the experiment folder, or the file's directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

/// `report html` flags.
#[derive(clap::Args)]
pub struct HtmlArgs {
    #[arg(long)]
    pub experiment_folder: PathBuf,
    /// Output file (default `report.html` next to the data).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Add a "Why requests were slow" section (`trace explain`'s TTFT composition and Gantt
    /// charts of the slowest requests): the client request trace of the run
    /// (`bench serving --request-trace FILE`). Needs the server's side too.
    #[arg(long, value_name = "FILE")]
    pub request_trace: Option<PathBuf>,
    /// The server's side for the section: the reference server's `serve --log-requests` file.
    #[arg(long, value_name = "FILE", conflicts_with = "server_trace")]
    pub request_log: Option<PathBuf>,
    /// The server's side for the section: its profiler traces (rank 0; repeat the flag for
    /// by-stage files).
    #[arg(long, value_name = "FILE")]
    pub server_trace: Vec<PathBuf>,
    /// Requests drawn in each Gantt chart (slowest by TTFT, slowest by E2E).
    #[arg(long, default_value_t = 10)]
    pub slowest: usize,
}

fn out_dir(source: &std::path::Path) -> PathBuf {
    if source.is_dir() {
        source.to_path_buf()
    } else {
        source
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    }
}

pub fn run(cmd: ReportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReportCommand::Excel(a) => {
            let d = inferperf_report::data::load(&a.experiment_folder).context("report excel")?;
            let base = a
                .experiment_folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into());
            let name = a
                .excel_name
                .unwrap_or_else(|| format!("{base}_summary.xlsx"));
            let path = out_dir(&a.experiment_folder).join(name);
            inferperf_report::excel::write(&d, &path).context("report excel")?;
            println!("Excel workbook written to {}", path.display());
        }
        ReportCommand::Plot(a) => {
            let d = inferperf_report::data::load(&a.experiment_folder).context("report plot")?;
            let dir = a
                .output_dir
                .unwrap_or_else(|| out_dir(&a.experiment_folder));
            let stem = dir.join(a.preset.file_stem());
            let svg_path = stem.with_extension("svg");
            let svg = inferperf_report::plot::svg(&d, a.preset).context("report plot")?;
            write_atomic(&svg_path, svg.as_bytes()).context("report plot")?;
            let png_path = stem.with_extension("png");
            let png = inferperf_report::plot::png(&d, a.preset).context("report plot")?;
            write_atomic(&png_path, &png).context("report plot")?;
            println!(
                "Plots written to {} and {}",
                png_path.display(),
                svg_path.display()
            );
        }
        ReportCommand::Html(a) => {
            let d = inferperf_report::data::load(&a.experiment_folder).context("report html")?;
            // The section's inputs are checked and explained before anything is written.
            let explained = SlowInputs {
                request_trace: a.request_trace,
                request_log: a.request_log,
                server_traces: a.server_trace,
                slowest: a.slowest,
            }
            .explain()
            .context("report html")?;
            let path = a
                .output
                .unwrap_or_else(|| out_dir(&a.experiment_folder).join("report.html"));
            let page =
                inferperf_report::html::page_with(&d, explained.as_ref()).context("report html")?;
            write_atomic(&path, page.as_bytes()).context("report html")?;
            println!("HTML report written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
