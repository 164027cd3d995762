//! The SVG plot (plotters, SVG backend, no font files): on top, round-trip latency over time
//! (p50 and p99 per second) for each mode and level; below, the latency histogram of each mode
//! and level over its measured window, on a log scale so that the tail shows. For each mode and
//! level the run with the median p99 is drawn.

use std::path::Path;

use plotters::prelude::*;

use super::options::Mode;
use super::report::RunResult;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// The run with the median p99 of each mode and level, in mode then level order.
fn representatives(runs: &[RunResult]) -> Vec<&RunResult> {
    let mut keys: Vec<(Mode, u32)> = runs.iter().map(|r| (r.mode, r.calls)).collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .filter_map(|&(m, c)| {
            let mut rs: Vec<&RunResult> = runs.iter().filter(|r| r.mode == m && r.calls == c).collect();
            rs.sort_by(|a, b| a.latency.p99_ms.total_cmp(&b.latency.p99_ms));
            rs.get(rs.len() / 2).copied()
        })
        .collect()
}

/// Draws the plot into `path`.
pub fn draw(path: &Path, runs: &[RunResult], title: &str) -> Result<(), String> {
    let reps = representatives(runs);
    if reps.is_empty() {
        return Err("nothing to plot".into());
    }
    let cols = 3usize;
    let rows = reps.len().div_ceil(cols);
    let (w, top_h, cell_h) = (1200u32, 420u32, 260u32);
    let h = top_h + cell_h * rows as u32;
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(top_h);

    // Latency over time.
    let t_max = reps.iter().flat_map(|r| r.timeline.iter().map(|p| p.t_s)).max().unwrap_or(1) as f64 + 1.0;
    let y_max = reps.iter().flat_map(|r| r.timeline.iter().map(|p| p.p99_ms)).fold(0.1f64, f64::max).max(0.1);
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{title}: round trip per second (p99 solid, p50 thin)"), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, (0.01f64..y_max * 1.5).log_scale())
        .map_err(|x| e(&x))?;
    chart.configure_mesh().x_desc("seconds since the run started").y_desc("ms").draw().map_err(|x| e(&x))?;
    for (i, r) in reps.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let p99: Vec<(f64, f64)> = r.timeline.iter().map(|p| (p.t_s as f64, p.p99_ms.max(0.01))).collect();
        let p50: Vec<(f64, f64)> = r.timeline.iter().map(|p| (p.t_s as f64, p.p50_ms.max(0.01))).collect();
        chart
            .draw_series(LineSeries::new(p99, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(format!("{} {} calls (run {})", r.mode.name(), r.calls, r.run))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(LineSeries::new(p50, color.stroke_width(1))).map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|x| e(&x))?;

    // One histogram per mode and level.
    let cells = bottom.split_evenly((rows, cols));
    for (i, (r, cell)) in reps.iter().zip(cells.iter()).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let total: u64 = r.histogram.iter().map(|b| b.1).sum::<u64>().max(1);
        let lo = r.histogram.first().map_or(0.01, |b| b.0 / 10f64.powf(0.1)).max(0.001);
        let hi = r.histogram.last().map_or(1.0, |b| b.0).max(lo * 10.0);
        let floor = 50.0 / total as f64; // half a frame, in %: the log axis starts below one frame
        let mut c = ChartBuilder::on(cell)
            .caption(
                format!(
                    "{} {} calls: p50 {:.2} p99 {:.2} max {:.1} ms",
                    r.mode.name(),
                    r.calls,
                    r.latency.p50_ms,
                    r.latency.p99_ms,
                    r.latency.max_ms
                ),
                ("sans-serif", 13),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((lo..hi).log_scale(), (floor..100.0).log_scale())
            .map_err(|x| e(&x))?;
        c.configure_mesh()
            .x_desc("round trip, ms")
            .y_desc("% of frames (log)")
            .y_label_formatter(&|v| format!("{v}"))
            .draw()
            .map_err(|x| e(&x))?;
        let mut prev = lo;
        let bars: Vec<Rectangle<(f64, f64)>> = r
            .histogram
            .iter()
            .filter_map(|&(upper, n)| {
                let from = prev;
                prev = upper;
                let pct = n as f64 * 100.0 / total as f64;
                (n > 0).then(|| Rectangle::new([(from, floor), (upper, pct)], color.filled()))
            })
            .collect();
        c.draw_series(bars).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::recorder::Counts;
    use crate::loadgen::report::{HarnessUsage, SecondPoint};
    use crate::loadgen::stats::Percentiles;

    #[test]
    fn draws_an_svg() {
        let run = |mode, calls, p99| RunResult {
            mode,
            tls: crate::loadgen::tls::TlsLegs::None,
            calls,
            run: 1,
            started_unix: 0,
            load_average: 0.0,
            busy_before_pct: 0.0,
            waited_for_idle_s: 0.0,
            window_s: 3.0,
            calls_failed: 0,
            failures: vec![],
            counts: Counts::default(),
            latency: Percentiles { p50_ms: 0.4, p99_ms: p99, max_ms: 3.0, ..Percentiles::default() },
            first_audio: Percentiles::default(),
            target: None,
            syscalls: None,
            syscalls_note: None,
            harness: HarnessUsage::default(),
            timeline: (0..5)
                .map(|t| SecondPoint { t_s: t, frames: 50, p50_ms: 0.4, p99_ms: p99, max_ms: 3.0 })
                .collect(),
            histogram: vec![(0.2, 10), (0.3, 50), (0.5, 30), (1.0, 9), (3.0, 1)],
            soak: None,
        };
        let runs = vec![run(Mode::EchoFloor, 5, 0.8), run(Mode::Relay, 5, 1.2), run(Mode::Relay, 5, 1.5)];
        let dir = std::env::temp_dir().join(format!("loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        draw(&path, &runs, "test").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("relay 5 calls"), "{}", &svg[..200.min(svg.len())]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
