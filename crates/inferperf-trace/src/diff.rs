//! `trace diff A B`: which kernels and CPU ops were added or removed, and how their counts and
//! total durations changed, with template/argument noise removed from names so that the same
//! kernel matches across builds.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::collect::TraceData;
use crate::table::{us_f, Table};

/// Options of the diff.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Compare full names instead of normalized ones.
    pub raw_names: bool,
    /// Rows shown (all rows are in JSON).
    pub top: Option<usize>,
}

/// One name's change.
#[derive(Debug, Clone, Serialize)]
pub struct DiffRow {
    /// `kernel` or `op`.
    pub kind: String,
    /// (Normalized) name.
    pub name: String,
    /// Count in A.
    pub count_a: u64,
    /// Count in B.
    pub count_b: u64,
    /// Total duration in A (µs).
    pub dur_a_us: f64,
    /// Total duration in B (µs).
    pub dur_b_us: f64,
    /// B − A duration (µs).
    pub delta_us: f64,
    /// `added`, `removed`, `increased`, `decreased` or `unchanged`.
    pub status: String,
}

/// The diff.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// File A.
    pub a: String,
    /// File B.
    pub b: String,
    /// GPU kernel time in A (µs).
    pub kernel_total_a_us: f64,
    /// GPU kernel time in B (µs).
    pub kernel_total_b_us: f64,
    /// Rows sorted by |delta|, largest first.
    pub rows: Vec<DiffRow>,
    /// Names only in B.
    pub added: usize,
    /// Names only in A.
    pub removed: usize,
}

/// Shortens a kernel/op name for matching: drops `void `, template arguments `<...>`, argument
/// lists `(...)` and hex addresses.
pub fn normalize(name: &str) -> String {
    let name = name.strip_prefix("void ").unwrap_or(name);
    let mut out = String::with_capacity(name.len());
    let mut angle = 0usize;
    let mut paren = 0usize;
    for c in name.chars() {
        match c {
            '<' => {
                if angle == 0 && paren == 0 {
                    out.push_str("<>");
                }
                angle += 1;
            }
            '>' if angle > 0 => angle -= 1,
            '(' => {
                if angle == 0 && paren == 0 {
                    out.push_str("()");
                }
                paren += 1;
            }
            ')' if paren > 0 => paren -= 1,
            _ if angle == 0 && paren == 0 => out.push(c),
            _ => {}
        }
    }
    // Hex addresses (e.g. "object at 0x7ed6e0170470").
    let mut res = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("0x") {
        res.push_str(&rest[..i]);
        res.push_str("0x?");
        let tail = &rest[i + 2..];
        let skip = tail
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(tail.len());
        rest = &tail[skip..];
    }
    res.push_str(rest);
    res.trim().to_string()
}

type Acc = BTreeMap<(String, String), (u64, i64)>;

fn accumulate(d: &TraceData, raw: bool) -> (Acc, i64) {
    let mut m: Acc = BTreeMap::new();
    let key = |n: &str| if raw { n.to_string() } else { normalize(n) };
    let mut total = 0;
    for e in &d.gpu {
        let v = m.entry(("kernel".into(), key(d.name(e.name)))).or_default();
        v.0 += 1;
        v.1 += e.end - e.start;
        total += e.end - e.start;
    }
    for ((cat, n), s) in &d.cpu_spans {
        if cat != "cpu_op" && cat != "user_annotation" {
            continue;
        }
        let v = m.entry(("op".into(), key(d.name(*n)))).or_default();
        v.0 += s.count;
        v.1 += s.sum;
    }
    (m, total)
}

/// Compares two collected traces.
pub fn diff(a: &TraceData, b: &TraceData, opts: &DiffOptions) -> DiffReport {
    let (ma, ta) = accumulate(a, opts.raw_names);
    let (mb, tb) = accumulate(b, opts.raw_names);
    let mut keys: Vec<&(String, String)> = ma.keys().chain(mb.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut rows: Vec<DiffRow> = keys
        .into_iter()
        .map(|k| {
            let (ca, da) = ma.get(k).copied().unwrap_or_default();
            let (cb, db) = mb.get(k).copied().unwrap_or_default();
            let status = if !ma.contains_key(k) {
                "added"
            } else if !mb.contains_key(k) {
                "removed"
            } else if db > da {
                "increased"
            } else if db < da {
                "decreased"
            } else {
                "unchanged"
            };
            DiffRow {
                kind: k.0.clone(),
                name: k.1.clone(),
                count_a: ca,
                count_b: cb,
                dur_a_us: da as f64 / 1000.0,
                dur_b_us: db as f64 / 1000.0,
                delta_us: (db - da) as f64 / 1000.0,
                status: status.into(),
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        y.delta_us
            .abs()
            .total_cmp(&x.delta_us.abs())
            .then_with(|| x.name.cmp(&y.name))
    });
    DiffReport {
        a: a.path.display().to_string(),
        b: b.path.display().to_string(),
        kernel_total_a_us: ta as f64 / 1000.0,
        kernel_total_b_us: tb as f64 / 1000.0,
        added: rows.iter().filter(|r| r.status == "added").count(),
        removed: rows.iter().filter(|r| r.status == "removed").count(),
        rows,
    }
}

impl DiffReport {
    /// Human/CSV tables (`top` limits the rows).
    pub fn tables(&self, top: Option<usize>) -> Vec<Table> {
        let mut t = Table::new(
            "diff",
            &format!(
                "Diff A={} B={} (GPU kernel time {} → {} µs; {} added, {} removed)",
                self.a,
                self.b,
                us_f(self.kernel_total_a_us),
                us_f(self.kernel_total_b_us),
                self.added,
                self.removed
            ),
            &[
                "kind", "name", "status", "count A", "count B", "Δcount", "µs A", "µs B", "Δµs",
            ],
        );
        for r in self.rows.iter().take(top.unwrap_or(usize::MAX)) {
            t.push(vec![
                r.kind.clone(),
                r.name.clone(),
                r.status.clone(),
                r.count_a.to_string(),
                r.count_b.to_string(),
                (r.count_b as i64 - r.count_a as i64).to_string(),
                us_f(r.dur_a_us),
                us_f(r.dur_b_us),
                us_f(r.delta_us),
            ]);
        }
        vec![t]
    }
}
