//! The `--report` charts: one SVG per invalidation strategy, the stall
//! probe's wait over time, so a reader sees at a glance which strategy
//! froze the server and for how long.

use std::fmt::Write as _;

use super::invalidate::Invalidation;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 48.0;
/// The stall goal drawn on every chart, milliseconds.
const GOAL_MS: f64 = 10.0;

/// A round number at or above `x` (1, 2, 5 × 10^k).
fn nice_ceiling(x: f64) -> f64 {
    let x = x.max(1e-9);
    let magnitude = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * magnitude)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of one strategy's probe timeline.
pub fn svg(run: &Invalidation) -> String {
    let points = &run.probe_timeline_ms;
    let x_max = nice_ceiling(points.iter().map(|p| p[0]).fold(run.wall_ms, f64::max));
    let y_max = nice_ceiling(points.iter().map(|p| p[1]).fold(GOAL_MS * 1.2, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: f64| LEFT + ms / x_max * plot_w;
    let y = |ms: f64| TOP + plot_h - ms / y_max * plot_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        escape(run.label)
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="38" fill="#444">{} entries: wall {:.0} ms, longest PING wait {:.2} ms, p99 {:.2} ms ({} PINGs, one per ms)</text>"##,
        run.entries, run.wall_ms, run.stalls.longest_ms, run.stalls.p99_ms, run.stalls.pings
    );
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            y = y(v),
        );
        let t = x_max * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0}</text>"#,
            x(t),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">time since the invalidation began (ms)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">PING wait (ms)</text>"#,
        TOP + plot_h / 2.0
    );
    if GOAL_MS <= y_max {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{g:.1}" y2="{g:.1}" stroke="#d62728" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" fill="#d62728" text-anchor="end">goal {GOAL_MS} ms</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y(GOAL_MS) - 4.0,
            g = y(GOAL_MS),
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p[0]), y(p[1])))
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
        path.join(" ")
    );
    // Few points (a short run): mark each, so a single one still shows.
    if points.len() <= 60 {
        for p in points {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f77b4"/>"##,
                x(p[0]),
                y(p[1])
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(0.4), 0.5);
        assert_eq!(nice_ceiling(180.0), 200.0);
    }
}
