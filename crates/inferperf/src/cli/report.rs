//! `inferperf report ...`: Excel workbooks, plots and HTML pages from experiment folders and
//! `bench serving` result files (genai-bench's `excel` and `plot`).
//!
//! Skeleton: filled in by the reports issue.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Excel workbook with genai-bench's sheets.
    Excel(EmptyArgs),
    /// Plots with genai-bench's presets (PNG and SVG).
    Plot(EmptyArgs),
    /// One self-contained HTML page with plots, tables and run metadata.
    Html(EmptyArgs),
}

/// Placeholder flags.
#[derive(clap::Args)]
pub struct EmptyArgs {}

pub fn run(_cmd: ReportCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`report` is not implemented yet")
}
