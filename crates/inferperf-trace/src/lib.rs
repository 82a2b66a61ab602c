//! Profiler-trace toolkit: streaming Chrome/Kineto trace reader and writer, multi-rank merge, summary, rank comparison, trim and diff.
