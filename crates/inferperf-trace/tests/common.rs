//! Shared test helpers: locating the team's shared trace data.
#![allow(dead_code)]

use std::path::PathBuf;

use inferperf_trace::collect::{collect, CollectOptions, TraceData};
use inferperf_trace::progress::Progress;
use inferperf_trace::taxonomy::Taxonomy;

/// `../shared/data/traces` relative to the repository root.
pub fn traces_dir() -> PathBuf {
    inferperf_test_support::manifest_dir!().join("../../../shared/data/traces")
}

/// The 8 DLRM rank files, sorted by name (= by worker number).
pub fn dlrm_files() -> Vec<PathBuf> {
    let dir = traces_dir().join("param_dlrm_kineto_8rank");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert_eq!(
        v.len(),
        8,
        "expected 8 DLRM rank files in {}",
        dir.display()
    );
    v
}

/// Collects one file with the built-in taxonomy.
pub fn load(path: &std::path::Path) -> TraceData {
    collect(
        path,
        &Taxonomy::builtin(),
        &CollectOptions::default(),
        &Progress::hidden(),
    )
    .unwrap_or_else(|e| panic!("collect {}: {e}", path.display()))
}
