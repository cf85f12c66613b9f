//! Charts as inline SVG, drawn here: no script, no library, scaled by the browser to the
//! page's width (a `viewBox`, no fixed size). Every chart has a title for screen readers and
//! each bar a tooltip with its figure; the numbers are also in a table on the same page.

use maud::{Markup, html};

/// Width and height of the drawing, in its own units.
const W: f64 = 600.0;
const H: f64 = 160.0;
/// Room below the bars for the first and last labels.
const LABELS: f64 = 18.0;

/// A bar chart of `bars` (label, value, the value as text) in order, titled `title`.
pub fn bars(title: &str, bars: &[(String, f64, String)]) -> Markup {
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let n = bars.len().max(1) as f64;
    let slot = W / n;
    let gap = (slot * 0.2).min(4.0);
    let plot = H - LABELS;
    html! {
        svg.chart viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) preserveAspectRatio="none" {
            title { (title) }
            line.axis x1="0" y1=(plot) x2=(W) y2=(plot) {}
            @for (i, (label, value, text)) in bars.iter().enumerate() {
                @let h = if max > 0.0 { value / max * (plot - 4.0) } else { 0.0 };
                rect.bar
                    x=(fmt(i as f64 * slot + gap / 2.0))
                    y=(fmt(plot - h))
                    width=(fmt((slot - gap).max(1.0)))
                    height=(fmt(h)) {
                    title { (label) ": " (text) }
                }
            }
            @if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
                text.label x="0" y=(H - 4.0) { (first.0) }
                text.label x=(W) y=(H - 4.0) text-anchor="end" { (last.0) }
            }
        }
    }
}

/// A coordinate with two decimals at most.
fn fmt(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars(
            "Requests <by day>",
            &[
                ("<b>".into(), 1.0, "1".into()),
                ("d2".into(), 4.0, "4".into()),
            ],
        )
        .into_string();
        assert!(svg.contains("Requests &lt;by day&gt;"));
        assert!(svg.contains("&lt;b&gt;: 1"));
        assert!(!svg.contains("<b>"));
        // The tallest bar fills the plot (less 4 units of headroom): 142 - 138 = 4.
        assert!(svg.contains(r#"y="4" width="296" height="138""#), "{svg}");
        assert!(svg.contains(r#"height="34.5""#), "{svg}");
        // Nothing to draw: no bars, no division by zero.
        assert!(!bars("empty", &[]).into_string().contains("rect"));
    }
}
