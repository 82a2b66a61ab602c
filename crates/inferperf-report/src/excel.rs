//! `report excel`: genai-bench's workbook -- Summary, Appendix, Experiment Metadata, Aggregated
//! Metrics for Each Run, Individual Request Metrics -- through rust_xlsxwriter.

use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet};
use serde_json::Value;

use crate::data::ReportData;
use crate::error::{write_atomic, ReportError};

fn x(e: rust_xlsxwriter::XlsxError) -> ReportError {
    ReportError::Excel(e.to_string())
}

fn header(ws: &mut Worksheet, cols: &[&str], bold: &Format) -> Result<(), ReportError> {
    for (c, name) in cols.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *name, bold)
            .map_err(x)?;
    }
    Ok(())
}

fn cell(ws: &mut Worksheet, r: u32, c: u16, v: &Value) -> Result<(), ReportError> {
    match v {
        Value::Number(n) => ws.write_number(r, c, n.as_f64().unwrap_or(0.0)).map(|_| ()),
        Value::Null => Ok(()),
        Value::String(s) => ws.write_string(r, c, s).map(|_| ()),
        other => ws.write_string(r, c, other.to_string()).map(|_| ()),
    }
    .map_err(x)
}

/// Flatten nested objects into `a.b.c` keys, in order.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Build the workbook bytes.
pub fn workbook(d: &ReportData) -> Result<Vec<u8>, ReportError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    // Summary: one row per scenario x load point.
    let ws = wb.add_worksheet().set_name("Summary").map_err(x)?;
    let cols = [
        "Scenario",
        "Iteration Type",
        "Load",
        "Requests per Second",
        "Output Throughput (tokens/s)",
        "Input Throughput (tokens/s)",
        "Mean TTFT (s)",
        "P99 TTFT (s)",
        "Mean TPOT (s)",
        "Mean E2E Latency (s)",
        "P99 E2E Latency (s)",
        "Error Rate",
        "Requests",
    ];
    header(ws, &cols, &bold)?;
    for (i, r) in d.runs.iter().enumerate() {
        let row = i as u32 + 1;
        ws.write_string(row, 0, &r.scenario).map_err(x)?;
        ws.write_string(row, 1, &r.iteration_type).map_err(x)?;
        for (c, v) in [
            r.value,
            r.requests_per_second,
            r.output_tokens_per_s,
            r.input_tokens_per_s,
            r.ttft_mean,
            r.ttft_p99,
            r.tpot_mean,
            r.e2e_mean,
            r.e2e_p99,
            r.error_rate,
            r.num_requests,
        ]
        .into_iter()
        .enumerate()
        {
            ws.write_number(row, c as u16 + 2, v).map_err(x)?;
        }
    }
    // Appendix: what the columns mean.
    let ws = wb.add_worksheet().set_name("Appendix").map_err(x)?;
    header(ws, &["Term", "Definition"], &bold)?;
    for (i, (t, def)) in [
        (
            "TTFT",
            "Time to first token: request start to the first generated token (s)",
        ),
        (
            "TPOT",
            "Time per output token after the first: (e2e - ttft) / (output tokens - 1)",
        ),
        (
            "E2E Latency",
            "Request start to the last byte of the response (s)",
        ),
        (
            "Output Throughput",
            "Output tokens of all requests / run duration",
        ),
        ("Requests per Second", "Completed requests / run duration"),
        (
            "Error Rate",
            "Failed requests / all requests (computed; genai-bench writes 0)",
        ),
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(i as u32 + 1, 0, *t).map_err(x)?;
        ws.write_string(i as u32 + 1, 1, *def).map_err(x)?;
    }
    // Experiment Metadata: key / value.
    let ws = wb
        .add_worksheet()
        .set_name("Experiment Metadata")
        .map_err(x)?;
    header(ws, &["Field", "Value"], &bold)?;
    let mut meta = Vec::new();
    flatten("", &d.metadata, &mut meta);
    for (i, (k, v)) in meta.iter().enumerate() {
        ws.write_string(i as u32 + 1, 0, k).map_err(x)?;
        cell(ws, i as u32 + 1, 1, v)?;
    }
    // Aggregated Metrics for Each Run: every stored field, flattened.
    let ws = wb
        .add_worksheet()
        .set_name("Aggregated Metrics for Each Run")
        .map_err(x)?;
    let mut keys: Vec<String> = Vec::new();
    let rows: Vec<Vec<(String, Value)>> = d
        .runs
        .iter()
        .map(|r| {
            let mut v = Vec::new();
            flatten("", &r.aggregated, &mut v);
            for (k, _) in &v {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            v
        })
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    header(ws, &key_refs, &bold)?;
    for (i, row) in rows.iter().enumerate() {
        for (k, v) in row {
            if let Some(c) = keys.iter().position(|x| x == k) {
                cell(ws, i as u32 + 1, c as u16, v)?;
            }
        }
    }
    // Individual Request Metrics: scenario, load, then every record field.
    let ws = wb
        .add_worksheet()
        .set_name("Individual Request Metrics")
        .map_err(x)?;
    let mut fields: Vec<String> = Vec::new();
    for r in &d.runs {
        for req in &r.requests {
            if let Value::Object(m) = req {
                for k in m.keys() {
                    if !fields.contains(k) {
                        fields.push(k.clone());
                    }
                }
            }
        }
    }
    // genai-bench's record field order first, anything else after.
    const ORDER: [&str; 14] = [
        "ttft",
        "tpot",
        "e2e_latency",
        "output_latency",
        "output_inference_speed",
        "num_input_tokens",
        "num_output_tokens",
        "num_reasoning_tokens",
        "total_tokens",
        "input_throughput",
        "output_throughput",
        "audio_throughput",
        "error_code",
        "error_message",
    ];
    fields.sort_by_key(|f| ORDER.iter().position(|o| o == f).unwrap_or(ORDER.len()));
    let mut cols: Vec<&str> = vec!["scenario", "load"];
    cols.extend(fields.iter().map(String::as_str));
    header(ws, &cols, &bold)?;
    let mut row = 1u32;
    for r in &d.runs {
        for req in &r.requests {
            ws.write_string(row, 0, &r.scenario).map_err(x)?;
            ws.write_number(row, 1, r.value).map_err(x)?;
            for (c, k) in fields.iter().enumerate() {
                cell(ws, row, c as u16 + 2, &req[k])?;
            }
            row += 1;
        }
    }
    wb.save_to_buffer().map_err(x)
}

/// Write the workbook to `path` (temp file, then rename).
pub fn write(d: &ReportData, path: &Path) -> Result<(), ReportError> {
    write_atomic(path, &workbook(d)?)
}
