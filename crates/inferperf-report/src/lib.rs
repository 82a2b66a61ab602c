//! Reports from result files: Excel workbooks, plots (SVG) and self-contained HTML pages, from a
//! genai-bench experiment folder (as `bench sweep` writes it) or `bench serving` JSONL results.
//!
//! [`data`] loads the runs (with [`detail`]: percentiles, per-request samples, timeline);
//! [`excel`], [`plot`] and [`html`] render them; [`charts`] builds the data of the page's
//! interactive charts and [`interactive`] embeds them with the vendored chart library (uPlot,
//! `vendor/`); [`slow`] adds the "Why requests were slow" section (`trace explain`).

pub mod charts;
pub mod data;
pub mod detail;
pub mod error;
pub mod excel;
pub mod html;
pub mod interactive;
pub mod plot;
pub mod slow;

pub use error::ReportError;
