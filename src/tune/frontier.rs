//! The cost/latency frontier: which configurations no other one beats on both CPU and
//! mean exposure (time to detect, misses charged with their whole visible time), and its
//! picture (`frontier.png`, `frontier.svg`).

use super::{Row, TuneError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Picture size in pixels.
pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 700;

/// The two costs a configuration is judged on, lower is better: CPU-seconds per
/// stream-minute, and mean exposure (time to detect, a missed item counting with its whole
/// visible time, so misses are charged). None when there were no items.
fn costs(r: &Row) -> Option<(f64, f64)> {
    let s = &r.summary;
    Some((s.cpu_s_per_stream_min, s.exposure_mean_s?))
}

/// Indices of the non-dominated rows: no other row is at least as good on both costs and
/// better on one. `current` takes part like any other row.
pub fn pareto(rows: &[Row]) -> Vec<usize> {
    let c: Vec<_> = rows.iter().map(costs).collect();
    (0..rows.len())
        .filter(|&i| {
            let Some(a) = c[i] else { return false };
            !c.iter()
                .flatten()
                .any(|b| b.0 <= a.0 && b.1 <= a.1 && (b.0 < a.0 || b.1 < a.1))
        })
        .collect()
}

fn font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans (Bitstream Vera licence, assets/fonts/DejaVuSans.LICENSE): the PNG
        // needs glyphs, and no system font is assumed.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

/// Writes `frontier.png` and `frontier.svg` into `dir`.
pub fn draw(dir: &Path, rows: &[Row], frontier: &[usize]) -> Result<(), TuneError> {
    font();
    let png = dir.join("frontier.png");
    let svg = dir.join("frontier.svg");
    {
        let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
        plot(&root, rows, frontier).map_err(|e| not_drawn(&png, e))?;
        root.present().map_err(|e| not_drawn(&png, e))?;
    }
    let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
    plot(&root, rows, frontier).map_err(|e| not_drawn(&svg, e))?;
    root.present().map_err(|e| not_drawn(&svg, e))?;
    Ok(())
}

fn not_drawn(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> TuneError {
    TuneError::Draw {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

fn plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Row],
    frontier: &[usize],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let pts: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| costs(r).map(|(x, y)| (i, x, y)))
        .collect();
    let max_x = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
    let max_y = pts.iter().map(|p| p.2).fold(0.0, f64::max).max(0.1) * 1.2;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "streamguard tune: time to detect against CPU",
            ("sans-serif", 26),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("CPU-seconds per stream-minute")
        .y_desc("mean time to detect, a miss counting its visible time (s)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(
            pts.iter()
                .map(|&(_, x, y)| Circle::new((x, y), 4, grey.filled())),
        )?
        .label("configuration")
        .legend(move |(x, y)| Circle::new((x, y), 4, grey.filled()));
    let mut front: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| frontier.contains(&p.0))
        .map(|p| (p.1, p.2))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A staircase: from each frontier point, what the next CPU step buys.
    let mut line = Vec::new();
    for (k, &(x, y)) in front.iter().enumerate() {
        if k > 0 {
            line.push((x, front[k - 1].1));
        }
        line.push((x, y));
    }
    chart
        .draw_series(LineSeries::new(line, RED.stroke_width(2)))?
        .label("Pareto frontier")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], RED.stroke_width(2)));
    // Labels sit beside their points, alternating above and below so neighbours stay
    // readable.
    for (n, &(i, x, y)) in pts.iter().filter(|p| frontier.contains(&p.0)).enumerate() {
        let s = &rows[i].summary;
        let label = format!(
            "{}: {}/{} found, median {} s",
            rows[i].combo.id,
            s.detected,
            s.items,
            s.ttd_median_s.map_or("-".into(), |v| format!("{v:.2}"))
        );
        let dy = if n % 2 == 0 { -20 } else { 8 };
        // Right of the point, or left of it near the right edge (about 7 px a character).
        let dx = if x > 0.55 * max_x {
            -8 - 7 * label.chars().count() as i32
        } else {
            8
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, y))
                + Circle::new((0, 0), 6, RED.filled())
                + Text::new(label, (dx, dy), ("sans-serif", 14).into_font().color(&RED)),
        ))?;
    }
    if let Some(&(_, x, y)) = pts.iter().find(|p| rows[p.0].combo.id == "current") {
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x, y))
                    + TriangleMarker::new((0, 0), 9, BLUE.filled())
                    + Text::new(
                        "current".to_string(),
                        (-30, 12),
                        ("sans-serif", 15).into_font().color(&BLUE),
                    ),
            ))?
            .label("current config")
            .legend(|(x, y)| TriangleMarker::new((x, y), 6, BLUE.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::report::Summary;
    use crate::tune::Combo;

    fn row(id: &str, cpu: f64, exposure: Option<f64>, missed: usize) -> Row {
        Row {
            combo: Combo {
                id: id.into(),
                values: Vec::new(),
                config: Default::default(),
            },
            summary: Summary {
                policy: id.into(),
                mode: "adaptive".into(),
                interval_ms: 0,
                files: 1,
                failed_files: 0,
                items: 10,
                detected: 10 - missed,
                missed,
                ttd_median_s: exposure,
                ttd_p95_s: exposure,
                ttd_mean_s: exposure,
                exposure_mean_s: exposure,
                frames_decoded: 0,
                frames_analysed: 0,
                false_matches: 0,
                feedback_timeouts: 0,
                stream_s: 60.0,
                cpu_s: cpu,
                decoded_per_stream_min: 0.0,
                analysed_per_stream_min: 0.0,
                cpu_s_per_stream_min: cpu,
            },
        }
    }

    #[test]
    fn frontier_keeps_only_the_undominated() {
        let rows = vec![
            row("cheap-slow", 0.5, Some(1.0), 0),
            row("dear-fast", 2.0, Some(0.1), 0),
            row("middle", 1.0, Some(0.4), 0),
            row("dominated", 1.5, Some(0.5), 0),
            row("as-slow-dearer", 0.6, Some(1.0), 3),
            row("no-items", 0.1, None, 0),
            row("twin", 1.0, Some(0.4), 0),
        ];
        assert_eq!(pareto(&rows), vec![0, 1, 2, 6]);
    }

    #[test]
    fn draws_both_pictures_at_the_stated_size() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            row("current", 1.0, Some(0.5), 0),
            row("combo-001", 0.5, Some(1.0), 0),
            row("combo-002", 2.0, Some(0.1), 1),
        ];
        draw(dir.path(), &rows, &pareto(&rows)).unwrap();
        let png = image::open(dir.path().join("frontier.png")).unwrap();
        assert_eq!((png.width(), png.height()), (WIDTH, HEIGHT));
        let svg = std::fs::read_to_string(dir.path().join("frontier.svg")).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("width=\"1000\""),
            "{svg:.200}"
        );
        assert!(svg.contains("combo-001") && svg.contains("current"));
    }
}
