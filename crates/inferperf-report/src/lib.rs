//! Reports from result files: tables, Excel workbooks, HTML pages and plots.
