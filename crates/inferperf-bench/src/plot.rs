//! `--plot-throughput`: the output-token throughput and the requests in flight of each second of
//! the run, drawn in the terminal. SGLang needs `termplotlib` and `gnuplot` for this; here it is
//! plain text, so it works on any host.

use std::fmt::Write as _;

use inferperf_loadgen::metrics::Timeline;

/// Rows of the chart area.
const HEIGHT: usize = 12;
/// Columns of the chart area; longer runs are averaged into this many columns.
const WIDTH: usize = 72;

/// Both series of the timeline as text charts.
pub fn render(t: &Timeline) -> String {
    let mut out = String::new();
    out.push_str(&chart("Output token throughput (tok/s)", &t.output_tokens));
    out.push_str(&chart("Concurrent requests", &t.concurrency));
    out
}

/// One series as a bar chart: y from 0 to the maximum, x in seconds.
fn chart(title: &str, series: &[usize]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title:^width$}", width = WIDTH + 10);
    if series.is_empty() {
        let _ = writeln!(out, "  (no successful requests)");
        return out;
    }
    let cols = compress(series, WIDTH);
    let max = cols.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    for row in (0..HEIGHT).rev() {
        let level = (row as f64 + 0.5) / HEIGHT as f64 * max;
        let label = if row == HEIGHT - 1 {
            format!("{max:>8.0}")
        } else if row == 0 {
            format!("{:>8}", 0)
        } else {
            " ".repeat(8)
        };
        let line: String = cols
            .iter()
            .map(|&v| if v >= level { '#' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{label} |{line}");
    }
    let _ = writeln!(out, "{} +{}", " ".repeat(8), "-".repeat(cols.len()));
    let end = format!("{} s", series.len());
    let _ = writeln!(
        out,
        "{}  0 s{end:>width$}",
        " ".repeat(8),
        width = cols.len().saturating_sub(3)
    );
    out
}

/// Fit `series` to about `width` columns: short runs repeat each second over several columns,
/// long runs average neighbouring seconds.
fn compress(series: &[usize], width: usize) -> Vec<f64> {
    if series.len() <= width {
        let repeat = (width / series.len().max(1)).max(1);
        return series
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v as f64, repeat))
            .collect();
    }
    (0..width)
        .map(|c| {
            let a = c * series.len() / width;
            let b = ((c + 1) * series.len() / width).max(a + 1);
            series[a..b].iter().sum::<usize>() as f64 / (b - a) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_the_series() {
        let t = Timeline {
            output_tokens: vec![0, 50, 100],
            concurrency: vec![1, 2, 2],
        };
        let text = render(&t);
        let tokens: Vec<&str> = text
            .lines()
            .skip(1)
            .take(HEIGHT)
            .map(|l| l.split('|').nth(1).unwrap_or(""))
            .collect();
        // Three seconds over 72 columns: 24 each. Top row: only the 100 tok/s second reaches
        // it; bottom row: the two non-zero seconds.
        let (off, on) = (" ".repeat(24), "#".repeat(24));
        assert_eq!(tokens[0], format!("{off}{off}{on}"));
        assert_eq!(tokens[HEIGHT - 1], format!("{off}{on}{on}"));
        assert!(text.contains("Concurrent requests"));
    }

    #[test]
    fn long_runs_are_averaged_into_the_width() {
        let long: Vec<usize> = (0..1000).collect();
        let cols = compress(&long, WIDTH);
        assert_eq!(cols.len(), WIDTH);
        assert!(cols.windows(2).all(|w| w[0] < w[1]));
    }
}
