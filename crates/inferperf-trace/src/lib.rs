//! Profiler-trace toolkit: streaming Chrome/Kineto trace reader and writer, multi-rank merge,
//! summary, rank comparison, trim and diff.
//!
//! Everything streams: a trace is visited one event at a time ([`reader::TraceReader`]) and
//! written one event at a time ([`writer::TraceWriter`], temp file + rename, gzip on its own
//! thread), so memory stays bounded by what an analysis keeps, not by the file size.
//!
//! Entry points: [`merge::merge_files`] (also used by the profiler for `merge_profiles: true`),
//! [`summary::summarize`], [`ranks::compare_ranks`], [`trim::trim`] and [`diff::diff`]. Each
//! analysis returns a serializable report that also renders as [`table::Table`]s.

pub mod align;
pub mod collect;
pub mod cpucomm;
pub mod diff;
pub mod error;
pub mod event;
pub mod explain;
pub mod fastscan;
pub mod intervals;
pub mod merge;
pub mod merge_client;
pub mod micros;
pub mod naming;
pub mod object;
pub mod prefetch;
pub mod progress;
pub mod ranks;
pub mod reader;
pub mod source;
pub mod stats;
pub mod summary;
pub mod table;
pub mod taxonomy;
pub mod timeline;
pub mod trim;
pub mod writer;

pub use error::TraceError;

pub use merge::{merge_files, MergeOptions, MergeReport};
pub use reader::TraceReader;
pub use writer::TraceWriter;
