//! Trace file names and profile ids, exactly as SGLang writes them, so that SGLang's merger,
//! HTA and the trace tools find our files.

use std::time::{SystemTime, UNIX_EPOCH};

/// The parallel position of one scheduler (rank) of the server.
///
/// File names carry `-DP-/-PP-/-EP-` only when the matching size is > 1 (SGLang's "backward
/// compatibility" rule); `-TP-{tp}` is always present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankInfo {
    pub tp_rank: usize,
    pub tp_size: usize,
    pub dp_rank: usize,
    pub dp_size: usize,
    pub pp_rank: usize,
    pub pp_size: usize,
    pub ep_rank: usize,
    pub ep_size: usize,
}

impl Default for RankInfo {
    fn default() -> Self {
        Self::single()
    }
}

impl RankInfo {
    /// The only rank of a single-process server (TP size 1).
    pub fn single() -> Self {
        Self::tp(0, 1)
    }

    /// Rank `tp_rank` of a tensor-parallel group of `tp_size`, no DP/PP/EP.
    pub fn tp(tp_rank: usize, tp_size: usize) -> Self {
        Self {
            tp_rank,
            tp_size,
            dp_rank: 0,
            dp_size: 1,
            pp_rank: 0,
            pp_size: 1,
            ep_rank: 0,
            ep_size: 1,
        }
    }

    /// Global rank for `distributedInfo.rank`: `(dp * pp_size + pp) * tp_size + tp`. EP ranks
    /// live inside the TP group in SGLang, so they do not add processes.
    pub fn global_rank(&self) -> usize {
        (self.dp_rank * self.pp_size.max(1) + self.pp_rank) * self.tp_size.max(1) + self.tp_rank
    }

    /// Number of scheduler processes: `tp_size * dp_size * pp_size`.
    pub fn world_size(&self) -> usize {
        self.tp_size.max(1) * self.dp_size.max(1) * self.pp_size.max(1)
    }

    /// `-TP-{tp}[-DP-{dp}][-PP-{pp}][-EP-{ep}]`.
    pub fn file_suffix(&self) -> String {
        let mut s = format!("-TP-{}", self.tp_rank);
        if self.dp_size > 1 {
            s.push_str(&format!("-DP-{}", self.dp_rank));
        }
        if self.pp_size > 1 {
            s.push_str(&format!("-PP-{}", self.pp_rank));
        }
        if self.ep_size > 1 {
            s.push_str(&format!("-EP-{}", self.ep_rank));
        }
        s
    }

    /// Label used in process names and merged pids: `TP00[-DP01][-PP00][-EP03]`.
    pub fn label(&self) -> String {
        let mut s = format!("TP{:02}", self.tp_rank);
        if self.dp_size > 1 {
            s.push_str(&format!("-DP{:02}", self.dp_rank));
        }
        if self.pp_size > 1 {
            s.push_str(&format!("-PP{:02}", self.pp_rank));
        }
        if self.ep_size > 1 {
            s.push_str(&format!("-EP{:02}", self.ep_rank));
        }
        s
    }
}

/// A `profile_by_stage` stage. Its file suffix is SGLang V1's `-EXTEND` / `-DECODE`
/// (`ForwardMode.name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Prefill-like batches: EXTEND and MIXED.
    Extend,
    /// Decode batches.
    Decode,
}

impl Stage {
    /// `EXTEND` or `DECODE`, as in file names and log lines.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Extend => "EXTEND",
            Stage::Decode => "DECODE",
        }
    }

    /// Parse a `profile_stages` entry: `prefill`/`extend` or `decode`, any case.
    pub fn parse(s: &str) -> Option<Stage> {
        match s.trim().to_ascii_lowercase().as_str() {
            "prefill" | "extend" => Some(Stage::Extend),
            "decode" => Some(Stage::Decode),
            _ => None,
        }
    }
}

/// `[{prefix}-]{profile_id}-TP-{tp}[-DP-..][-PP-..][-EP-..][-{STAGE}].trace.json.gz`
pub fn trace_file_name(
    prefix: Option<&str>,
    profile_id: &str,
    rank: &RankInfo,
    stage: Option<Stage>,
) -> String {
    let mut s = String::new();
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        s.push_str(p);
        s.push('-');
    }
    s.push_str(profile_id);
    s.push_str(&rank.file_suffix());
    if let Some(stage) = stage {
        s.push('-');
        s.push_str(stage.name());
    }
    s.push_str(".trace.json.gz");
    s
}

/// `{time}-TP-{tp}-memory[-{STAGE}].json.gz`: SGLang's memory-snapshot name (fresh timestamp,
/// no prefix, TP only) with our extension. Torch writes a `.pickle` for pytorch.org/memory_viz;
/// we write a Chrome trace of counters instead, and deliberately not `*.trace.json.gz` so that
/// no merger glob ever picks it up as a rank trace.
pub fn memory_file_name(time_str: &str, rank: &RankInfo, stage: Option<Stage>) -> String {
    let mut s = format!("{time_str}-TP-{}-memory", rank.tp_rank);
    if let Some(stage) = stage {
        s.push('-');
        s.push_str(stage.name());
    }
    s.push_str(".json.gz");
    s
}

/// `merged-{profile_id}.trace.json.gz`.
pub fn merged_file_name(profile_id: &str) -> String {
    format!("merged-{profile_id}.trace.json.gz")
}

/// Python's `str(time.time())` for now: the shortest decimal that round-trips the epoch seconds
/// as an f64, always with a fractional part (`1718000000.0`, never `1718000000`).
pub fn python_time_str(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    python_float_repr(secs)
}

/// Python `repr(float)` for the finite, non-negative values used as timestamps. Rust's `{}`
/// already prints the shortest round-trip form; Python adds `.0` to integral values.
pub fn python_float_repr(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A fresh profile id, `str(time.time())`.
pub fn new_profile_id() -> String {
    python_time_str(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn single_rank_names() {
        let r = RankInfo::single();
        assert_eq!(
            trace_file_name(None, "1718000000.1234567", &r, None),
            "1718000000.1234567-TP-0.trace.json.gz"
        );
        assert_eq!(
            trace_file_name(Some("pre"), "17.5", &r, Some(Stage::Extend)),
            "pre-17.5-TP-0-EXTEND.trace.json.gz"
        );
        assert_eq!(
            trace_file_name(Some(""), "17.5", &r, Some(Stage::Decode)),
            "17.5-TP-0-DECODE.trace.json.gz"
        );
    }

    #[test]
    fn rank_parts_only_when_size_above_one() {
        let r = RankInfo {
            tp_rank: 1,
            tp_size: 2,
            dp_rank: 2,
            dp_size: 3,
            pp_rank: 3,
            pp_size: 4,
            ep_rank: 4,
            ep_size: 5,
        };
        // The name SGLang's own test expects: pref-profile-TP-1-DP-2-PP-3-EP-4-DECODE.
        assert_eq!(
            trace_file_name(Some("pref"), "profile", &r, Some(Stage::Decode)),
            "pref-profile-TP-1-DP-2-PP-3-EP-4-DECODE.trace.json.gz"
        );
        assert_eq!(r.label(), "TP01-DP02-PP03-EP04");
        let t = RankInfo::tp(3, 4);
        assert_eq!(t.file_suffix(), "-TP-3");
        assert_eq!(t.global_rank(), 3);
        assert_eq!(t.world_size(), 4);
        assert_eq!(r.global_rank(), (2 * 4 + 3) * 2 + 1);
    }

    #[test]
    fn memory_and_merged_names() {
        let r = RankInfo::tp(1, 2);
        assert_eq!(
            memory_file_name("1.5", &r, Some(Stage::Decode)),
            "1.5-TP-1-memory-DECODE.json.gz"
        );
        assert_eq!(memory_file_name("1.5", &r, None), "1.5-TP-1-memory.json.gz");
        assert_eq!(merged_file_name("1.5"), "merged-1.5.trace.json.gz");
    }

    #[test]
    fn python_time_repr() {
        assert_eq!(
            python_time_str(UNIX_EPOCH + Duration::from_secs(1_718_000_000)),
            "1718000000.0"
        );
        assert_eq!(python_float_repr(1718000000.1234567), "1718000000.1234567");
        assert_eq!(python_float_repr(0.5), "0.5");
        let id = new_profile_id();
        let parsed: f64 = id.parse().unwrap();
        assert!(parsed > 1.6e9, "{id}");
        assert!(id.contains('.'));
    }

    #[test]
    fn stage_parse() {
        assert_eq!(Stage::parse("prefill"), Some(Stage::Extend));
        assert_eq!(Stage::parse("EXTEND"), Some(Stage::Extend));
        assert_eq!(Stage::parse("Decode"), Some(Stage::Decode));
        assert_eq!(Stage::parse("mixed"), None);
    }
}
