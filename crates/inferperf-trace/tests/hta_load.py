"""Loads a trace with HTA 0.5.0's parser and with json, prints counts as JSON.

Used by tests/merge.rs (run with the test venv's python) to check that our merged output is
readable by HTA. Usage: python hta_load.py TRACE
"""
import gzip
import json
import sys

from hta.common.trace import parse_trace_file

path = sys.argv[1]
opener = gzip.open if path.endswith(".gz") else open
with opener(path, "rb") as f:
    doc = json.load(f)
events = doc["traceEvents"]
meta, df, symbols = parse_trace_file(path)
table = symbols.get_sym_table()
cats = [table[i] for i in df["cat"]]
print(json.dumps({
    "raw_events": len(events),
    "hta_rows": int(len(df)),
    "hta_kernels": sum(1 for c in cats if c == "kernel"),
    "hta_pids": int(df["pid"].nunique()),
}))
