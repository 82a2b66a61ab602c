//! The JSONL result record: SGLang's keys in SGLang's order (§1.12), then ours, written as one
//! line appended to `--output-file` with one `O_APPEND` write under a file lock, so concurrent
//! runs appending to one file never lose a line. Non-finite floats are written as Python's `json.dumps` writes them
//! (`Infinity`, `NaN`), e.g. the default `"request_rate": Infinity`.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::error::BenchError;

/// SGLang's record keys, in order (without `--cache-report`).
pub const SGLANG_KEYS: &[&str] = &[
    "tag",
    "backend",
    "dataset_name",
    "request_rate",
    "max_concurrency",
    "sharegpt_output_len",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "server_info",
    "duration",
    "completed",
    "total_input_tokens",
    "total_input_text_tokens",
    "total_input_vision_tokens",
    "total_output_tokens",
    "total_output_tokens_retokenized",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "std_e2e_latency_ms",
    "p90_e2e_latency_ms",
    "p95_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p90_ttft_ms",
    "p95_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p90_tpot_ms",
    "p95_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p90_itl_ms",
    "p95_itl_ms",
    "p99_itl_ms",
    "concurrency",
    "accept_length",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
];

/// A JSON value that may hold non-finite floats.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// Any JSON value (finite numbers, strings, objects, null).
    Json(Value),
    /// A float, written as `Infinity`/`-Infinity`/`NaN` when not finite.
    Float(f64),
    /// Nested ordered object.
    Object(OrderedRecord),
}

impl From<Value> for Field {
    fn from(v: Value) -> Self {
        Field::Json(v)
    }
}

impl From<f64> for Field {
    fn from(v: f64) -> Self {
        Field::Float(v)
    }
}

/// An object that keeps insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderedRecord {
    pub fields: Vec<(String, Field)>,
}

impl OrderedRecord {
    /// Append a key (later duplicates are kept out: the first one wins).
    pub fn put(&mut self, key: &str, v: impl Into<Field>) {
        if !self.fields.iter().any(|(k, _)| k == key) {
            self.fields.push((key.to_owned(), v.into()));
        }
    }

    /// Serialize to one line of Python-`json.dumps`-compatible JSON.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(4096);
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        s.push('{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&Value::String(k.clone()).to_string());
            s.push_str(": ");
            match v {
                Field::Json(j) => s.push_str(&j.to_string()),
                Field::Float(f) => s.push_str(&float(*f)),
                Field::Object(o) => o.write(s),
            }
        }
        s.push('}');
    }
}

/// Python `json.dumps` rendering of a float.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        Value::from(f).to_string()
    }
}

/// Parse a line written by [`OrderedRecord::to_line`] (or by Python) with serde_json, mapping
/// the bare non-finite tokens to strings first.
pub fn parse_line(line: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&sanitize(line))
}

/// Replace bare `Infinity`/`-Infinity`/`NaN` tokens (outside strings) with strings.
fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if !in_str {
            let token = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t));
            if let Some(t) = token {
                out.push('"');
                out.push_str(t);
                out.push('"');
                rest = &rest[t.len()..];
                continue;
            }
            in_str = c == '"';
        } else if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_str = false;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Top-level keys of a record line, in file order (serde_json's maps are sorted, so the order
/// check needs its own pass).
pub fn top_level_keys(line: &str) -> Result<Vec<String>, serde_json::Error> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = vec![];
                    while let Some(k) = m.next_key::<String>()? {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    let text = sanitize(line);
    Ok(serde_json::from_str::<Keys>(&text)?.0)
}

/// Write `bytes` to `path` whole or not at all (see [`inferperf_protocol::fs`]): readers
/// never see a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    inferperf_protocol::fs::write_atomic(path, bytes)
        .map_err(|e| BenchError::io(format!("writing {}", e.path.display()), e.source))
}

/// Append one line to `path` (created if missing; its directory must exist, as with SGLang's
/// `open(path, "a")`): one `O_APPEND` write of
/// the whole line under an exclusive advisory lock (`flock`), so concurrent runs appending to
/// the same file never lose or interleave lines. Writing in place keeps the file's mode and
/// owner and goes through symlinks; a file that does not end in a newline gets one first.
pub fn append_line(path: &Path, line: &str) -> Result<(), BenchError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| BenchError::io(format!("opening {} for appending", path.display()), e))?;
    let _lock = FileLock::exclusive(&file)
        .map_err(|e| BenchError::io(format!("locking {}", path.display()), e))?;
    let mut buf = Vec::with_capacity(line.len() + 2);
    let len = file
        .metadata()
        .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?
        .len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| BenchError::io(format!("reading {}", path.display()), e))?;
        if last[0] != b'\n' {
            buf.push(b'\n');
        }
    }
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    file.write_all(&buf)
        .and_then(|_| file.sync_data())
        .map_err(|e| BenchError::io(format!("appending to {}", path.display()), e))?;
    Ok(())
}

/// An exclusive `flock` on an open file, released on drop (and by the kernel if the process
/// dies), so appenders in other processes wait for each other.
struct FileLock(std::os::fd::RawFd);

impl FileLock {
    fn exclusive(file: &std::fs::File) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        loop {
            // SAFETY: `fd` is an open descriptor owned by `file`, which outlives the lock.
            if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
                return Ok(Self(fd));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is still open (the file outlives the guard).
        unsafe {
            libc::flock(self.0, libc::LOCK_UN);
        }
    }
}

/// Check, before a run, that `path` can be appended to: its directory exists (or can be made)
/// and the file can be opened for appending. A file created by the check is removed again, so
/// a failed run leaves nothing behind.
pub fn check_appendable(path: &Path) -> Result<(), BenchError> {
    let existed = path.exists();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(BenchError::Config(format!(
                "output file {}: directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            BenchError::Config(format!(
                "output file {} cannot be written: {e}",
                path.display()
            ))
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_compatible_floats_round_trip() {
        let mut r = OrderedRecord::default();
        r.put("request_rate", f64::INFINITY);
        r.put("tag", json!("a \"NaN\" tag é"));
        r.put("x", 1.5);
        let line = r.to_line();
        assert_eq!(
            line,
            r#"{"request_rate": Infinity, "tag": "a \"NaN\" tag é", "x": 1.5}"#
        );
        let v = parse_line(&line).unwrap_or_default();
        assert_eq!(v["request_rate"], json!("Infinity"));
        assert_eq!(v["tag"], json!("a \"NaN\" tag é"));
        assert_eq!(
            top_level_keys(&line).unwrap_or_default(),
            ["request_rate", "tag", "x"]
        );
    }

    #[test]
    fn append_keeps_previous_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("out.jsonl");
        append_line(&p, "{\"a\": 1}").unwrap_or_else(|e| panic!("{e}"));
        append_line(&p, "{\"a\": 2}").unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        assert_eq!(text, "{\"a\": 1}\n{\"a\": 2}\n");
    }

    /// Six runs appending to one file at once (the issue's reproduction) keep every line.
    #[test]
    fn concurrent_appenders_lose_no_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("out.jsonl");
        std::thread::scope(|s| {
            for w in 0..6 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..40 {
                        append_line(p, &format!("{{\"writer\": {w}, \"i\": {i}}}"))
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 240);
        for l in lines {
            assert!(parse_line(l).is_ok(), "a damaged line: {l}");
        }
    }

    /// Appending writes in place: the file keeps its mode, a symlink stays a symlink and the
    /// line lands in its target, and a last line without a newline is terminated first.
    #[test]
    fn append_keeps_mode_symlinks_and_terminates_the_last_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = dir.path().join("real.jsonl");
        std::fs::write(&target, "{\"a\": 0}").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
        append_line(&link, "{\"a\": 1}").unwrap_or_else(|e| panic!("{e}"));
        assert!(std::fs::symlink_metadata(&link)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false));
        let mode = std::fs::metadata(&target)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap_or_default(),
            "{\"a\": 0}\n{\"a\": 1}\n"
        );
    }

    #[test]
    fn an_output_file_in_a_missing_directory_is_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("missing").join("out.jsonl");
        let e = check_appendable(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("does not exist") && e.contains("missing"), "{e}");
        let ok = dir.path().join("out.jsonl");
        assert!(check_appendable(&ok).is_ok());
        assert!(!ok.exists(), "the check leaves no empty file behind");
    }
}
