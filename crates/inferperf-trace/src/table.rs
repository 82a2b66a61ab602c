//! Plain tables shared by every analysis: rendered for humans (aligned, long names shortened)
//! or as CSV for machines. JSON output serializes the analysis reports themselves.

use serde::Serialize;

/// Longest text cell shown in the human view; CSV and JSON keep full names.
const MAX_TEXT: usize = 72;

/// One table of an analysis report.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Machine name (used by `--table` to pick one table as CSV).
    pub name: String,
    /// Human title printed above the table.
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of already formatted cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with headers.
    pub fn new(name: &str, title: &str, headers: &[&str]) -> Self {
        Table {
            name: name.to_string(),
            title: title.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned text with the title; numbers right-aligned, long text cells shortened.
    pub fn render(&self) -> String {
        let ncol = self.headers.len();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                (0..ncol)
                    .map(|i| shorten(r.get(i).map(String::as_str).unwrap_or("")))
                    .collect()
            })
            .collect();
        let numeric: Vec<bool> = (0..ncol)
            .map(|i| {
                cells.iter().all(|r| {
                    let c = r[i].trim_end_matches('%');
                    c.is_empty() || c == "-" || c.parse::<f64>().is_ok()
                })
            })
            .collect();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        out.push_str(&self.title);
        out.push('\n');
        let line = |out: &mut String, row: &[String]| {
            let mut s = String::new();
            for (i, c) in row.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = width[i].saturating_sub(c.chars().count());
                if numeric[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if i + 1 < row.len() {
                        s.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut out, &self.headers);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for r in &cells {
            line(&mut out, r);
        }
        if cells.is_empty() {
            out.push_str("(no rows)\n");
        }
        out
    }

    /// RFC 4180 CSV with a header row.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing to a Vec cannot fail.
        let _ = w.write_record(&self.headers);
        for r in &self.rows {
            let _ = w.write_record(r);
        }
        let bytes = w.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Renders several tables for a terminal.
pub fn render_all(tables: &[Table]) -> String {
    tables
        .iter()
        .map(Table::render)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renders several tables as CSV blocks: a `# name` line before each, blank line between.
pub fn csv_all(tables: &[Table]) -> String {
    tables
        .iter()
        .map(|t| format!("# {}\n{}", t.name, t.to_csv()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_TEXT - 1).collect();
        t.push('…');
        t
    }
}

/// Formats nanoseconds as microseconds: integers stay integers, otherwise 3 decimals.
pub fn us(ns: i64) -> String {
    if ns % 1000 == 0 {
        format!("{}", ns / 1000)
    } else {
        format!("{:.3}", ns as f64 / 1000.0)
    }
}

/// Formats a float microsecond value with 3 decimals (or as an integer when whole).
pub fn us_f(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Formats a percentage with 2 decimals.
pub fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}", 100.0 * part / whole)
    } else {
        "-".to_string()
    }
}
