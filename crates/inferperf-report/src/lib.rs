//! Reports from result files: Excel workbooks, plots (SVG) and self-contained HTML pages, from a
//! genai-bench experiment folder (as `bench sweep` writes it) or `bench serving` JSONL results.
//!
//! [`data`] loads the runs; [`excel`], [`plot`] and [`html`] render them.

pub mod data;
pub mod error;
pub mod excel;
pub mod html;
pub mod plot;

pub use error::ReportError;
