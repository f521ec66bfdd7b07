//! The report as one self-contained HTML page: the same sheets as the workbook, each a
//! section with its charts and tables, printable to PDF from a browser (A4 landscape,
//! one section per page at least, table headers repeated on each page).
//!
//! Charts are inline SVG drawn here, in Rust: the page loads nothing (no script, no
//! font, no image from anywhere), which its Content-Security-Policy also enforces, so
//! it opens the same from a file, a USB stick or an intranet without internet, and
//! prints exactly as it shows. A charting library (ECharts, say) would draw the same
//! charts with a 1 MB script to vendor and keep current, and would draw them only once
//! a script ran; static SVG needs neither and is what the printed report wants.
//!
//! Every figure cell carries `data-k` (the column key, a mart column where it shows
//! one) and its row `data-id` (a town_id, county code, year or target id); every chart
//! is an `<svg data-chart=…>` whose marks carry `data-value`. Tests read those.

use std::fmt::Write;

use crate::model::{Chart, ChartKind, Fmt, Grid, Report, Sheet, Value};

/// Colours of series, in order.
const PALETTE: [&str; 10] = [
    "#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4",
    "#ea7ccc", "#2f4554",
];

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink: #1f2d3d; --muted: #667085; --line: #d0d7e2; --head: #e8eef7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f5f7fb;
  font-family: "Microsoft YaHei", "微软雅黑", "PingFang SC", "Noto Sans CJK SC",
    "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; font-size: 14px; }
header.top { background: #1f3b64; color: #fff; padding: 20px 32px; }
header.top h1 { margin: 0 0 6px; font-size: 24px; }
header.top p { margin: 0; opacity: .85; font-size: 12px; }
nav { padding: 10px 32px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { margin-right: 14px; color: #1f3b64; text-decoration: none; white-space: nowrap; }
main { padding: 8px 32px 32px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 16px 20px; margin: 16px 0; }
h2 { margin: 0 0 4px; font-size: 19px; color: #1f3b64; }
.run { color: var(--muted); font-size: 11px; margin: 0 0 10px; }
h3 { margin: 18px 0 2px; font-size: 15px; }
p.note { margin: 0 0 6px; color: var(--muted); font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 8px 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px;
  break-inside: avoid; }
figcaption { font-weight: bold; font-size: 13px; margin: 0 0 4px 4px; }
svg text { font-family: inherit; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.neg { color: #b42318; }
tr.total td { font-weight: bold; background: #f2f4f7; }
td { white-space: nowrap; }
td.def { min-width: 320px; max-width: 640px; white-space: normal; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { background: #fff; font-size: 11px; }
  header.top { background: #fff; color: var(--ink); padding: 0 0 8px; border-bottom: 2px solid #1f3b64; }
  nav { display: none; }
  main { padding: 0; }
  section { border: none; padding: 0; margin: 0; break-before: page; }
  table { font-size: 9px; }
  th, td { padding: 2px 4px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"#;

/// The page.
pub fn page(report: &Report) -> String {
    let m = &report.meta;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing from anywhere: no script, no font, no image, no request.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<meta name=\"townstat-run\" content=\"{}\">",
        esc(&m.run_id)
    );
    let _ = writeln!(out, "<meta name=\"townstat-year\" content=\"{}\">", m.year);
    let _ = writeln!(out, "<title>{}</title>", esc(&m.title()));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<header class=\"top\"><h1>{}</h1><p>{}</p></header>",
        esc(&m.title()),
        esc(&m.line())
    );
    out.push_str("<nav>");
    for (i, s) in report.sheets.iter().enumerate() {
        let _ = write!(out, "<a href=\"#s{i}\">{}</a>", esc(&s.name));
    }
    out.push_str("</nav>\n<main>\n");
    for (i, s) in report.sheets.iter().enumerate() {
        section(&mut out, i, s, report);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn section(out: &mut String, i: usize, s: &Sheet, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"s{i}\" data-sheet=\"{}\">\n<h2>{}</h2>\n<p class=\"run\">{}</p>",
        esc(&s.name),
        esc(&s.title),
        esc(&report.meta.line())
    );
    if !s.charts.is_empty() {
        out.push_str("<div class=\"charts\">\n");
        for c in &s.charts {
            // As in the workbook: a chart with nothing to draw is left out.
            if let Some(g) = s.grid(&c.grid)
                && !g.rows.is_empty()
                && !c.series.is_empty()
            {
                let _ = writeln!(
                    out,
                    "<figure><figcaption>{}</figcaption>\n{}</figure>",
                    esc(&c.title),
                    svg(c, g)
                );
            }
        }
        out.push_str("</div>\n");
    }
    for g in &s.grids {
        table(out, g);
    }
    out.push_str("</section>\n");
}

fn table(out: &mut String, g: &Grid) {
    let _ = writeln!(out, "<h3>{}</h3>", esc(&g.title));
    if let Some(n) = &g.note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    let _ = write!(
        out,
        "<div class=\"scroll\"><table data-grid=\"{}\">\n<thead><tr>",
        esc(&g.id)
    );
    for c in &g.cols {
        let _ = write!(
            out,
            "<th data-k=\"{}\">{}</th>",
            esc(&c.key),
            esc(&c.header)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (r, row) in g.rows.iter().enumerate() {
        let id = g.row_ids.get(r).map(String::as_str).unwrap_or("");
        let _ = write!(out, "<tr data-id=\"{}\">", esc(id));
        for (c, v) in row.iter().enumerate() {
            cell(
                out,
                &g.cols[c].key,
                v,
                g.fmt_at(r, c),
                g.id == "glossary" && c == 4,
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n");
    if g.total {
        out.push_str("<tfoot><tr class=\"total\" data-id=\"合计\">");
        for (c, v) in g.total_row().iter().enumerate() {
            cell(out, &g.cols[c].key, v, g.cols[c].fmt, false);
        }
        out.push_str("</tr></tfoot>\n");
    }
    out.push_str("</table></div>\n");
}

fn cell(out: &mut String, key: &str, v: &Value, fmt: Fmt, definition: bool) {
    let class = match v {
        Value::Num(x) if *x < 0.0 && fmt == Fmt::Pct1 => " class=\"num neg\"",
        Value::Num(_) => " class=\"num\"",
        _ if definition => " class=\"def\"",
        _ => "",
    };
    let _ = write!(
        out,
        "<td data-k=\"{}\"{class}>{}</td>",
        esc(key),
        esc(&fmt.show(v))
    );
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) ≥ `x`.
fn nice(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x - 1e-12 {
            return m * p;
        }
    }
    10.0 * p
}

/// An axis from `lo` to `hi` in round steps: (lo, hi, step), five steps or fewer.
fn axis(lo: f64, hi: f64, whole: bool) -> (f64, f64, f64) {
    let span = (hi.max(0.0) - lo.min(0.0)).max(f64::MIN_POSITIVE);
    let mut step = nice(span / 5.0);
    if whole {
        step = step.max(1.0).round();
    }
    let top = (hi.max(0.0) / step).ceil() * step;
    let bottom = (lo.min(0.0) / step).floor() * step;
    let top = if top <= bottom { bottom + step } else { top };
    (bottom, top, step)
}

fn tick(x: f64, fmt: Fmt) -> String {
    match fmt {
        Fmt::Pct1 => format!("{:.0}%", x * 100.0),
        _ if x.abs() >= 1000.0 => Fmt::Int.show(&Value::Num(x)),
        _ if x.fract().abs() < 1e-9 => format!("{x:.0}"),
        _ => format!("{x:.1}"),
    }
}

/// The chart as inline SVG.
pub fn svg(c: &Chart, g: &Grid) -> String {
    let cats: Vec<String> = g
        .rows
        .iter()
        .map(|r| match &r[c.category] {
            Value::Num(x) => format!("{x}"),
            v => v.text().to_string(),
        })
        .collect();
    let series: Vec<(String, Vec<Option<f64>>, Fmt)> = c
        .series
        .iter()
        .map(|&s| {
            (
                g.cols[s].header.clone(),
                g.rows.iter().map(|r| r[s].num()).collect(),
                g.cols[s].fmt,
            )
        })
        .collect();
    let all = series.iter().flat_map(|s| s.1.iter().flatten().copied());
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let fmt = series.first().map(|s| s.2).unwrap_or(Fmt::Dec2);
    let scale = axis(lo, hi, fmt == Fmt::Int);
    match c.kind {
        ChartKind::Bar => bars(c, &cats, &series, scale, fmt),
        ChartKind::Column | ChartKind::Line => columns(c, &cats, &series, scale, fmt),
    }
}

type Series = (String, Vec<Option<f64>>, Fmt);

fn legend(out: &mut String, series: &[Series], x0: f64, y: f64, width: f64) {
    let mut x = x0;
    let mut y = y;
    for (i, (name, _, _)) in series.iter().enumerate() {
        let w = 22.0 + crate::xlsx::width(name) * 6.5;
        if x + w > x0 + width {
            x = x0;
            y += 16.0;
        }
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">{}</text>",
            y - 9.0,
            PALETTE[i % PALETTE.len()],
            x + 16.0,
            esc(name)
        );
        x += w + 10.0;
    }
}

fn legend_rows(series: &[Series], width: f64) -> f64 {
    let mut rows = 1.0;
    let mut x = 0.0;
    for (name, _, _) in series {
        let w = 22.0 + crate::xlsx::width(name) * 6.5 + 10.0;
        if x + w > width {
            rows += 1.0;
            x = 0.0;
        }
        x += w;
    }
    rows
}

/// The `<svg>` tag: the chart's id and kind, and how many values it draws.
fn open_svg(out: &mut String, c: &Chart, kind: &str, series: &[Series], (w, h): (f64, f64)) {
    let points: usize = series.iter().map(|s| s.1.iter().flatten().count()).sum();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"{}\" data-kind=\"{kind}\" \
         data-points=\"{points}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{}\">",
        esc(&c.id),
        esc(&c.title)
    );
}

/// Vertical bars or lines over categories.
fn columns(
    c: &Chart,
    cats: &[String],
    series: &[Series],
    (lo, hi, step): (f64, f64, f64),
    fmt: Fmt,
) -> String {
    let w = 760.0;
    let left = 64.0;
    let right = 16.0;
    let top = 14.0;
    let rotate = cats.iter().any(|s| crate::xlsx::width(s) > 8.0) && cats.len() > 4;
    let axis_h = if rotate { 70.0 } else { 24.0 };
    let plot_h = 240.0;
    let legend_h = if series.len() > 1 {
        16.0 * legend_rows(series, w - left) + 8.0
    } else {
        0.0
    };
    let h = top + plot_h + axis_h + legend_h;
    let plot_w = w - left - right;
    let y = |v: f64| top + plot_h * (hi - v) / (hi - lo);
    let mut out = String::new();
    let kind = if c.kind == ChartKind::Line {
        "line"
    } else {
        "column"
    };
    open_svg(&mut out, c, kind, series, (w, h));
    let ticks = ((hi - lo) / step).round() as usize;
    for i in 0..=ticks {
        let v = lo + step * i as f64;
        let yy = y(v);
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e7ec\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#667085\">{}</text>",
            left + plot_w,
            left - 6.0,
            yy + 3.5,
            tick(v, fmt)
        );
    }
    let _ = write!(
        out,
        "<text x=\"4\" y=\"{:.1}\" font-size=\"10\" fill=\"#667085\">{}</text>",
        top - 3.0,
        esc(&c.axis)
    );
    let n = cats.len().max(1) as f64;
    let band = plot_w / n;
    for (i, cat) in cats.iter().enumerate() {
        let cx = left + band * (i as f64 + 0.5);
        let ty = top + plot_h + 14.0;
        if rotate {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"end\" \
                 transform=\"rotate(-35 {cx:.1} {ty:.1})\">{}</text>",
                esc(cat)
            );
        } else {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                esc(cat)
            );
        }
    }
    if c.kind == ChartKind::Line {
        for (si, (name, vals, f)) in series.iter().enumerate() {
            let colour = PALETTE[si % PALETTE.len()];
            let pts: Vec<String> = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| format!("{:.1},{:.1}", left + band * (i as f64 + 0.5), y(v)))
                })
                .collect();
            let _ = write!(
                out,
                "<polyline data-series=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                esc(name),
                pts.join(" ")
            );
            for (i, v) in vals.iter().enumerate() {
                if let Some(v) = v {
                    let _ = write!(
                        out,
                        "<circle data-value=\"{v}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\">\
                         <title>{} {}: {}</title></circle>",
                        left + band * (i as f64 + 0.5),
                        y(*v),
                        esc(name),
                        esc(&cats[i]),
                        esc(&f.show(&Value::Num(*v)))
                    );
                }
            }
        }
    } else {
        let k = series.len().max(1) as f64;
        let bw = (band * 0.7 / k).min(36.0);
        for (si, (name, vals, f)) in series.iter().enumerate() {
            let colour = PALETTE[si % PALETTE.len()];
            for (i, v) in vals.iter().enumerate() {
                let Some(v) = v else { continue };
                let x = left + band * (i as f64 + 0.5) - bw * k / 2.0 + bw * si as f64;
                let (y0, y1) = (y(v.max(0.0)), y(v.min(0.0)));
                let _ = write!(
                    out,
                    "<rect data-value=\"{v}\" x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     fill=\"{colour}\"><title>{} {}: {}</title></rect>",
                    bw - 2.0,
                    (y1 - y0).max(0.5),
                    esc(name),
                    esc(&cats[i]),
                    esc(&f.show(&Value::Num(*v)))
                );
                if series.len() == 1 {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#344054\">{}</text>",
                        x + (bw - 2.0) / 2.0,
                        y0 - 3.0,
                        esc(&f.show(&Value::Num(*v)))
                    );
                }
            }
        }
    }
    if series.len() > 1 {
        legend(
            &mut out,
            series,
            left,
            top + plot_h + axis_h + 12.0,
            w - left,
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Horizontal bars, one band per category, first category on top.
fn bars(
    c: &Chart,
    cats: &[String],
    series: &[Series],
    (lo, hi, step): (f64, f64, f64),
    fmt: Fmt,
) -> String {
    let w = 760.0;
    let label_w = cats
        .iter()
        .map(|s| crate::xlsx::width(s) * 6.2 + 12.0)
        .fold(60.0f64, f64::max)
        .min(300.0);
    let right = 70.0;
    let top = 22.0;
    let k = series.len().max(1) as f64;
    let band = (14.0 * k + 10.0).max(24.0);
    let plot_h = band * cats.len() as f64;
    let legend_h = if series.len() > 1 { 22.0 } else { 0.0 };
    let h = top + plot_h + 20.0 + legend_h;
    let plot_w = w - label_w - right;
    let x = |v: f64| label_w + plot_w * (v - lo) / (hi - lo);
    let mut out = String::new();
    open_svg(&mut out, c, "bar", series, (w, h));
    let ticks = ((hi - lo) / step).round() as usize;
    for i in 0..=ticks {
        let v = lo + step * i as f64;
        let xx = x(v);
        let _ = write!(
            out,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#e4e7ec\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#667085\">{}</text>",
            top + plot_h,
            top + plot_h + 13.0,
            tick(v, fmt)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"12\" font-size=\"10\" fill=\"#667085\" text-anchor=\"end\">{}</text>",
        w - 4.0,
        esc(&c.axis)
    );
    for (i, cat) in cats.iter().enumerate() {
        let y0 = top + band * i as f64;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y0 + band / 2.0 + 4.0,
            esc(cat)
        );
        for (si, (name, vals, f)) in series.iter().enumerate() {
            let Some(v) = vals[i] else { continue };
            let bh = 14.0;
            let yy = y0 + (band - bh * k) / 2.0 + bh * si as f64;
            let (x0, x1) = (x(v.min(0.0)), x(v.max(0.0)));
            let _ = write!(
                out,
                "<rect data-value=\"{v}\" x=\"{x0:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{}\"><title>{} {}: {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#344054\">{}</text>",
                (x1 - x0).max(0.5),
                bh - 2.0,
                PALETTE[si % PALETTE.len()],
                esc(name),
                esc(cat),
                esc(&f.show(&Value::Num(v))),
                x1 + 3.0,
                yy + bh - 4.0,
                esc(&f.show(&Value::Num(v)))
            );
        }
    }
    if series.len() > 1 {
        legend(&mut out, series, label_w, top + plot_h + 34.0, plot_w);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Col;

    #[test]
    fn axes_run_in_round_steps() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(0.8), 1.0);
        assert_eq!(nice(1.2), 2.0);
        assert_eq!(nice(211.6), 250.0);
        assert_eq!(axis(0.0, 2.116, false), (0.0, 2.5, 0.5));
        assert_eq!(axis(0.0, 213.44, false), (0.0, 250.0, 50.0));
        assert_eq!(axis(0.0, 3.0, true), (0.0, 3.0, 1.0));
        assert_eq!(axis(-0.4, 1.0, false), (-0.5, 1.0, 0.5));
        assert_eq!(axis(0.0, 0.0, true), (0.0, 1.0, 1.0));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_value_becomes_a_mark() {
        let g = Grid {
            id: "g".into(),
            title: "t".into(),
            cols: vec![
                Col::new("name", "名称", Fmt::Text),
                Col::new("a", "甲", Fmt::Dec2),
                Col::new("b", "乙", Fmt::Pct1),
            ],
            rows: vec![
                vec![Value::Text("x<y".into()), Value::Num(2.0), Value::Num(0.5)],
                vec![Value::Text("z".into()), Value::Num(-1.0), Value::Null],
            ],
            row_ids: vec![],
            total: false,
            note: None,
            row_fmt: vec![],
        };
        for kind in [ChartKind::Line, ChartKind::Column, ChartKind::Bar] {
            let c = Chart {
                id: "c".into(),
                title: "图".into(),
                kind,
                grid: "g".into(),
                category: 0,
                series: vec![1, 2],
                axis: "亿元".into(),
            };
            let s = svg(&c, &g);
            assert_eq!(s.matches("data-value=").count(), 3, "{kind:?}: {s}");
            assert!(s.contains("data-points=\"3\""), "{kind:?}");
            assert!(s.contains("x&lt;y"), "{kind:?}");
            assert!(!s.contains("NaN") && !s.contains("inf"), "{kind:?}: {s}");
        }
    }
}
