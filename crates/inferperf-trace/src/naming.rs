//! Rank identity: from `distributedInfo.rank`, then from the file name (SGLang's
//! `TP-n[-DP-n][-PP-n][-EP-n][-STAGE]`, vLLM's `dpN_ppN_tpN[_dcpN]_epN`, `rank n`, `worker n`),
//! then from a user rank map; vLLM's front-end trace (`*.async_llm.*`) is a process of its own
//! rather than a rank. Also discovery of SGLang per-rank trace files by profile id (with or
//! without a prefix). The conventions are listed in `docs/trace-conventions.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::TraceError;

/// Who a trace file belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RankId {
    /// Data-parallel rank.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dp: Option<u32>,
    /// Expert-parallel rank.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ep: Option<u32>,
    /// Pipeline-parallel rank.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pp: Option<u32>,
    /// Tensor-parallel rank.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tp: Option<u32>,
    /// Global rank (`distributedInfo.rank`, `rank N`, `worker N`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rank: Option<u32>,
    /// Profile-by-stage suffix (`EXTEND`, `DECODE`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stage: Option<String>,
    /// vLLM's API-server front end: the worker name before `.async_llm` in its trace file
    /// (`{host}_{pid}`). That process runs no model and has no rank.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frontend: Option<String>,
}

impl RankId {
    /// True when nothing identifies the rank (or the front-end process).
    pub fn is_unknown(&self) -> bool {
        self.frontend.is_none()
            && self.rank.is_none()
            && self.tp.is_none()
            && self.dp.is_none()
            && self.pp.is_none()
            && self.ep.is_none()
    }

    /// True when a parallel layout (TP/DP/PP/EP) is known.
    pub fn has_layout(&self) -> bool {
        self.tp.is_some() || self.dp.is_some() || self.pp.is_some() || self.ep.is_some()
    }

    /// Label such as `[TP01 DP00 PP00 EP00]`, `[TP00 DP00 PP00 EP00 EXTEND]`, `[RANK07]`, or
    /// `vLLM frontend (async_llm, pid 4242)` for vLLM's front end.
    pub fn label(&self) -> String {
        if let Some(worker) = &self.frontend {
            return match worker.rsplit_once('_').map(|(_, pid)| pid) {
                Some(pid) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("vLLM frontend (async_llm, pid {pid})")
                }
                _ => "vLLM frontend (async_llm)".to_string(),
            };
        }
        let mut s = if self.has_layout() {
            format!(
                "[TP{:02} DP{:02} PP{:02} EP{:02}",
                self.tp.unwrap_or(0),
                self.dp.unwrap_or(0),
                self.pp.unwrap_or(0),
                self.ep.unwrap_or(0)
            )
        } else if let Some(r) = self.rank {
            format!("[RANK{r:02}")
        } else {
            "[UNKNOWN".to_string()
        };
        if let Some(st) = &self.stage {
            s.push(' ');
            s.push_str(st);
        }
        s.push(']');
        s
    }
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| {
        Regex::new(pat).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable_regex()))
    })
}

#[allow(clippy::unwrap_used)]
fn unreachable_regex() -> Regex {
    // "a^" is a valid regex that never matches.
    Regex::new("a^").unwrap()
}

/// Parses rank information from a file name.
///
/// vLLM's torch profiler names files `{worker}.{time_ns}.pt.trace.json[.gz]`: workers are
/// `{instance}-rank-{N}` or `[prefix_]dp{D}_pp{P}_tp{T}[_dcp{C}]_ep{E}_rank{N}` (or `rank{N}`),
/// the API-server front end is `{host}_{pid}.async_llm`. The front end's host name is not
/// searched for rank numbers (a host called `worker-3` is not rank 3).
pub fn parse_file_name(name: &str) -> RankId {
    if let Some(pos) = name.find(".async_llm.") {
        return RankId {
            frontend: Some(name[..pos].to_string()),
            ..Default::default()
        };
    }
    static VLLM_LAYOUT: OnceLock<Regex> = OnceLock::new();
    static TP: OnceLock<Regex> = OnceLock::new();
    static DP: OnceLock<Regex> = OnceLock::new();
    static PP: OnceLock<Regex> = OnceLock::new();
    static EP: OnceLock<Regex> = OnceLock::new();
    static STAGE: OnceLock<Regex> = OnceLock::new();
    static RANK: OnceLock<Regex> = OnceLock::new();
    let num = |r: &Regex| -> Option<u32> {
        r.captures(name)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    };
    let stage = re(
        &STAGE,
        r"-(EXTEND|DECODE|PREFILL|extend|decode|prefill)(?:\.|$)",
    )
    .captures(name)
    .and_then(|c| c.get(1))
    .map(|m| m.as_str().to_ascii_uppercase());
    let vllm = re(
        &VLLM_LAYOUT,
        r"(?:^|_)dp(\d+)_pp(\d+)_tp(\d+)(?:_dcp\d+)?_ep(\d+)(?:_|\.|$)",
    )
    .captures(name);
    let layout = |i: usize| -> Option<u32> {
        vllm.as_ref()
            .and_then(|c| c.get(i))
            .and_then(|m| m.as_str().parse().ok())
    };
    RankId {
        tp: num(re(&TP, r"TP-(\d+)")).or(layout(3)),
        dp: num(re(&DP, r"DP-(\d+)")).or(layout(1)),
        pp: num(re(&PP, r"PP-(\d+)")).or(layout(2)),
        ep: num(re(&EP, r"EP-(\d+)")).or(layout(4)),
        rank: num(re(&RANK, r"(?i)(?:rank|worker)[-_]?(\d+)")),
        stage,
        frontend: None,
    }
}

/// A user-supplied mapping from file name to rank (TOML: `"file" = 3` or
/// `"file" = { tp = 1, dp = 0 }`).
#[derive(Debug, Clone, Default)]
pub struct RankMap(BTreeMap<String, RankId>);

#[derive(Deserialize)]
#[serde(untagged)]
enum MapEntry {
    Rank(u32),
    Full(RankId),
}

impl RankMap {
    /// Loads a rank map file.
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::io(path, e))?;
        let raw: BTreeMap<String, MapEntry> = toml::from_str(&text).map_err(|e| {
            TraceError::Config(format!(
                "{}: invalid rank map (expected lines like \"file.json\" = 3 or \"file.json\" = {{ tp = 1 }}): {e}",
                path.display()
            ))
        })?;
        Ok(RankMap(
            raw.into_iter()
                .map(|(k, v)| {
                    let id = match v {
                        MapEntry::Rank(r) => RankId {
                            rank: Some(r),
                            ..Default::default()
                        },
                        MapEntry::Full(id) => id,
                    };
                    (k, id)
                })
                .collect(),
        ))
    }

    /// The entry for `path` (matched by full path, then by file name).
    pub fn get(&self, path: &Path) -> Option<&RankId> {
        self.0.get(&path.display().to_string()).or_else(|| {
            path.file_name()
                .and_then(|n| self.0.get(n.to_string_lossy().as_ref()))
        })
    }
}

/// Combines the sources in order of precedence: `distributedInfo.rank`, then the file name, then
/// the rank map (which fills whatever the first two leave unknown).
pub fn resolve(dist_rank: Option<i64>, path: &Path, map: Option<&RankMap>) -> RankId {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = parse_file_name(&name);
    if file.frontend.is_some() {
        // A front-end process, whatever its trace says about ranks.
        return file;
    }
    let mapped = map.and_then(|m| m.get(path)).cloned().unwrap_or_default();
    RankId {
        rank: dist_rank
            .and_then(|r| u32::try_from(r).ok())
            .or(file.rank)
            .or(mapped.rank),
        tp: file.tp.or(mapped.tp),
        dp: file.dp.or(mapped.dp),
        pp: file.pp.or(mapped.pp),
        ep: file.ep.or(mapped.ep),
        stage: file.stage.or(mapped.stage),
        frontend: mapped.frontend,
    }
}

/// Finds SGLang per-rank traces of `profile_id` in `dir`: names containing the id and `TP-`,
/// ending in `.trace.json.gz` / `.trace.json`, excluding `merged-*` outputs. Unlike SGLang's
/// merger this also finds files with a `profile_prefix` before the id. Sorted by (DP, EP, PP,
/// TP, stage), as SGLang sorts them.
pub fn discover(dir: &Path, profile_id: &str) -> Result<Vec<PathBuf>, TraceError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TraceError::io(dir, e))?;
    let mut found: Vec<(RankId, PathBuf)> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TraceError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".trace.json.gz") || name.ends_with(".trace.json")) {
            continue;
        }
        if name.starts_with("merged-") || !name.contains("TP-") {
            continue;
        }
        let Some(pos) = name.find(profile_id) else {
            continue;
        };
        // The id must be followed by the rank part, so `1.5` does not match `1.55-TP-0`.
        if !name[pos + profile_id.len()..].starts_with("-TP-") {
            continue;
        }
        found.push((parse_file_name(&name), entry.path()));
    }
    found.sort();
    if found.is_empty() {
        return Err(TraceError::Empty(format!(
            "no trace files for profile id {profile_id:?} in {} (expected names like {profile_id}-TP-0.trace.json.gz)",
            dir.display()
        )));
    }
    Ok(found.into_iter().map(|(_, p)| p).collect())
}
