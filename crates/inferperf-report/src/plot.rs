//! `report plot`: genai-bench's presets as SVG (text stays text) and PNG (text drawn with the
//! DejaVu Sans font embedded in the binary, so no system fonts are needed on a headless machine). `2x4_default`: eight metrics against the load,
//! one line per scenario; `multi_line_latency`: E2E latency p50/p90/p99 against the load.

use plotters::prelude::*;

use crate::data::{ReportData, Run};
use crate::error::ReportError;

/// The presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    #[value(name = "2x4_default")]
    Default2x4,
    #[value(name = "multi_line_latency")]
    MultiLineLatency,
}

impl Preset {
    /// genai-bench's output file name, without the extension (`.png` / `.svg`).
    pub fn file_stem(self) -> &'static str {
        match self {
            Preset::Default2x4 => "traffic_scenario_combined_plots_2x4",
            Preset::MultiLineLatency => "multi_line_latency",
        }
    }
}

type Metric = (&'static str, fn(&Run) -> f64);

const GRID: [Metric; 8] = [
    ("Output Throughput (tokens/s)", |r| r.output_tokens_per_s),
    ("Requests per Second", |r| r.requests_per_second),
    ("Mean TTFT (s)", |r| r.ttft_mean),
    ("P99 TTFT (s)", |r| r.ttft_p99),
    ("Mean TPOT (s)", |r| r.tpot_mean),
    ("Mean E2E Latency (s)", |r| r.e2e_mean),
    ("P99 E2E Latency (s)", |r| r.e2e_p99),
    ("Error Rate", |r| r.error_rate),
];

fn perr(name: &str, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        name: name.into(),
        message: e.to_string(),
    }
}

/// (line label, points) series of one chart.
type Series = Vec<(String, Vec<(f64, f64)>)>;

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    series: &Series,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y1 = ys.fold(0.0f64, f64::max);
    let (x0, x1) = if x0 >= x1 {
        (x0 - 1.0, x0 + 1.0)
    } else {
        (x0, x1)
    };
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.1 };
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(|e| perr(title, e))?;
    c.configure_mesh()
        .x_desc(x_label)
        .draw()
        .map_err(|e| perr(title, e))?;
    for (i, (label, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| perr(title, e))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        c.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| perr(title, e))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| perr(title, e))?;
    Ok(())
}

fn per_scenario(d: &ReportData, f: fn(&Run) -> f64) -> Series {
    d.scenarios()
        .into_iter()
        .map(|s| {
            let pts = d.runs_of(&s).map(|r| (r.value, f(r))).collect();
            (s, pts)
        })
        .collect()
}

/// Register the embedded font once (text layout needs it for both backends).
fn ensure_font() -> Result<(), ReportError> {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let registered = *FONT.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if registered {
        Ok(())
    } else {
        Err(perr("font", "cannot load the embedded DejaVu Sans font"))
    }
}

/// Draw `preset` on any plotters backend.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    d: &ReportData,
    preset: Preset,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    ensure_font()?;
    let x_label = d
        .runs
        .first()
        .map_or("load", |r| r.iteration_type.as_str())
        .to_string();
    root.fill(&WHITE).map_err(|e| perr("background", e))?;
    match preset {
        Preset::Default2x4 => {
            for (area, (title, f)) in root.split_evenly((2, 4)).iter().zip(GRID) {
                chart(area, title, &x_label, &per_scenario(d, f))?;
            }
        }
        Preset::MultiLineLatency => {
            let mut series = Series::new();
            for s in d.scenarios() {
                for (q, f) in [
                    ("p50", (|r: &Run| r.e2e_p50) as fn(&Run) -> f64),
                    ("p90", |r: &Run| r.e2e_p90),
                    ("p99", |r: &Run| r.e2e_p99),
                ] {
                    series.push((
                        format!("{s} {q}"),
                        d.runs_of(&s).map(|r| (r.value, f(r))).collect(),
                    ));
                }
            }
            chart(&root, "E2E Latency (s)", &x_label, &series)?;
        }
    }
    root.present().map_err(|e| perr("present", e))
}

fn size(preset: Preset) -> (u32, u32) {
    match preset {
        Preset::Default2x4 => (1600, 800),
        Preset::MultiLineLatency => (900, 600),
    }
}

/// Draw `preset` as an SVG document.
pub fn svg(d: &ReportData, preset: Preset) -> Result<String, ReportError> {
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, size(preset)).into_drawing_area(),
        d,
        preset,
    )?;
    Ok(out)
}

/// Draw `preset` as PNG bytes.
pub fn png(d: &ReportData, preset: Preset) -> Result<Vec<u8>, ReportError> {
    let (w, h) = size(preset);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
        d,
        preset,
    )?;
    let mut out = Vec::new();
    {
        let mut enc = ::png::Encoder::new(&mut out, w, h);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| perr("png", e))?;
        writer.write_image_data(&rgb).map_err(|e| perr("png", e))?;
    }
    Ok(out)
}
