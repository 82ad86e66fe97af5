//! A bar chart as inline SVG, drawn on the server: one bar per hour of a
//! Jakarta day, each with a `<title>` (its exact value), the largest value
//! written on the axis. Styled by the stylesheet; no script.

use maud::{html, Markup};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 160;
const TOP: i64 = 16;
const BOTTOM: i64 = 20;

/// `values[h]` for hours 0–23; `label` formats a value for people.
pub fn hourly_bars(title: &str, values: &[i64; 24], label: impl Fn(i64) -> String) -> Markup {
    let largest = values.iter().copied().max().unwrap_or(0);
    let max = largest.max(1);
    let slot = WIDTH / 24;
    let plot = HEIGHT - TOP - BOTTOM;
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-label=(title) {
                line.axis x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
                text.max x="2" y="11" { @if largest > 0 { "max " (label(largest)) } @else { "none yet" } }
                @for (hour, v) in values.iter().enumerate() {
                    // In i128: a value times the plot's height can pass i64::MAX.
                    @let h = (i128::from(*v) * i128::from(plot) / i128::from(max)) as i64;
                    @let x = hour as i64 * slot + 2;
                    rect.bar x=(x) y=(HEIGHT - BOTTOM - h) width=(slot - 4) height=(h) {
                        title { (format!("{hour:02}:00–{hour:02}:59: ")) (label(*v)) }
                    }
                    @if hour % 3 == 0 {
                        text.tick x=(x) y=(HEIGHT - 5) { (format!("{hour:02}")) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_say_their_values() {
        let mut v = [0i64; 24];
        v[9] = 10;
        v[10] = 5;
        let svg = hourly_bars("Notifications", &v, |n| n.to_string()).into_string();
        assert!(svg.contains("height=\"124\""), "{svg}");
        assert!(svg.contains("height=\"62\""), "{svg}");
        assert!(svg.contains("09:00–09:59: 10"), "{svg}");
        assert!(svg.contains("max 10"), "{svg}");
    }

    #[test]
    fn the_largest_amounts_scale_without_overflowing() {
        let mut v = [0i64; 24];
        v[9] = i64::MAX;
        v[10] = i64::MAX / 2;
        let svg = hourly_bars("Paid", &v, |n| n.to_string()).into_string();
        assert!(svg.contains("height=\"124\""), "{svg}");
        assert!(svg.contains("height=\"61\""), "{svg}");
        assert!(!svg.contains("height=\"-"), "{svg}");
    }

    #[test]
    fn a_day_without_values_says_so_rather_than_a_maximum() {
        let svg = hourly_bars("Paid", &[0; 24], |n| format!("Rp {n}")).into_string();
        assert!(svg.contains("none yet") && !svg.contains("max "), "{svg}");
    }
}
