//! The report as an Excel workbook (rust_xlsxwriter): one worksheet per sheet, each
//! grid as a titled table with number formats (never numbers as text), 合计 rows as
//! SUM formulas with their value cached (Excel, LibreOffice and readers that do not
//! calculate all see the figure), frozen header rows, column widths fitted to CJK text
//! (a Chinese character is two columns wide), the run id and date in the sheet's first
//! rows and in its printed page header, and native charts over the grids' cells.
//!
//! Each grid's range (header, rows and 合计) is a workbook-level defined name
//! `t_<grid id>` (e.g. `t_towns`), so a reader finds a table without knowing where it
//! sits on its sheet. The workbook's creation time is the run's commit time: one run
//! gives one workbook, byte for byte.

use rust_xlsxwriter::{
    Chart, ChartType, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Formula,
    Workbook, Worksheet, utility,
};

use crate::model::{ChartKind, Fmt, Grid, Report, Sheet, Value};
use crate::{Error, Result};

fn err(e: rust_xlsxwriter::XlsxError) -> Error {
    Error::Failed(format!("writing the workbook: {e}"))
}

/// Display width of text in Excel columns (`townstat_query::xlsx::width`).
pub fn width(s: &str) -> f64 {
    townstat_query::xlsx::width(s) as f64
}

struct Formats {
    title: Format,
    meta: Format,
    grid_title: Format,
    note: Format,
    header: Format,
    text: Format,
    wrap: Format,
}

impl Formats {
    fn new() -> Formats {
        let font = "等线";
        let base = Format::new().set_font_name(font).set_font_size(10.5);
        Formats {
            title: base.clone().set_bold().set_font_size(14),
            meta: base.clone().set_font_color("#595959").set_font_size(9),
            grid_title: base.clone().set_bold().set_font_size(12),
            note: base
                .clone()
                .set_italic()
                .set_font_color("#595959")
                .set_font_size(9),
            header: base
                .clone()
                .set_bold()
                .set_background_color("#DDEBF7")
                .set_border(FormatBorder::Thin)
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            text: base.clone().set_border(FormatBorder::Thin),
            wrap: base
                .clone()
                .set_border(FormatBorder::Thin)
                .set_text_wrap()
                .set_align(FormatAlign::Top),
        }
    }

    fn number(&self, fmt: Fmt, total: bool) -> Format {
        let f = Format::new()
            .set_font_name("等线")
            .set_font_size(10.5)
            .set_border(FormatBorder::Thin)
            .set_num_format(fmt.excel());
        if total {
            f.set_bold().set_background_color("#F2F2F2")
        } else {
            f
        }
    }
}

/// Where a grid landed: its header row, first data row, last row (合计 included) and
/// first column.
struct Placed {
    header: u32,
    first: u32,
    last_data: u32,
}

/// The workbook's bytes.
pub fn workbook(report: &Report) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_timestamp(report.meta.committed_micros.div_euclid(1_000_000))
        .map_err(err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(report.meta.title())
            .set_author("townstat")
            .set_company("大同市专业镇")
            .set_comment(report.meta.line())
            .set_creation_datetime(&created),
    );
    let f = Formats::new();
    for sheet in &report.sheets {
        let names = write_sheet(&mut wb, report, sheet, &f)?;
        for (name, range) in names {
            wb.define_name(name, &range).map_err(err)?;
        }
    }
    wb.save_to_buffer().map_err(err)
}

fn write_sheet(
    wb: &mut Workbook,
    report: &Report,
    sheet: &Sheet,
    f: &Formats,
) -> Result<Vec<(String, String)>> {
    let ws: &mut Worksheet = wb.add_worksheet();
    ws.set_name(&sheet.name).map_err(err)?;
    ws.set_landscape();
    ws.set_paper_size(9); // A4
    ws.set_print_fit_to_pages(1, 0);
    // Printed page header: the run on the left, the run date on the right.
    ws.set_header(format!(
        "&L运行编号 {}&C{}&R运行日期 {}",
        report.meta.run_id, sheet.title, report.meta.run_date
    ));
    ws.set_footer("&C第 &P 页,共 &N 页");
    ws.write_string_with_format(
        0,
        0,
        format!("{} — {}", report.meta.title(), sheet.title),
        &f.title,
    )
    .map_err(err)?;
    ws.write_string_with_format(1, 0, report.meta.line(), &f.meta)
        .map_err(err)?;

    let ncols = sheet.grids.iter().map(|g| g.cols.len()).max().unwrap_or(1);
    let mut widths = vec![6.0f64; ncols];
    let mut row: u32 = 3;
    let mut placed: Vec<(String, Placed)> = vec![];
    let mut names = vec![];
    for g in &sheet.grids {
        ws.write_string_with_format(row, 0, &g.title, &f.grid_title)
            .map_err(err)?;
        row += 1;
        if let Some(n) = &g.note {
            ws.write_string_with_format(row, 0, n, &f.note)
                .map_err(err)?;
            row += 1;
        }
        let p = write_grid(ws, g, row, f, &mut widths)?;
        names.push((
            format!("t_{}", g.id),
            format!(
                "={}!{}",
                utility::quote_sheet_name(&sheet.name),
                utility::cell_range_absolute(p.header, 0, p.last_data, g.cols.len() as u16 - 1)
            ),
        ));
        row = p.last_data + 3;
        placed.push((g.id.clone(), p));
    }
    for (c, w) in widths.iter().enumerate() {
        let cap = if sheet.name == "指标解释" && c == 4 {
            80.0
        } else {
            40.0
        };
        ws.set_column_width(c as u16, w.min(cap) + 2.0)
            .map_err(err)?;
    }
    // One grid: freeze its header. Several: freeze the title and run lines.
    match placed.as_slice() {
        [(_, p)] => ws.set_freeze_panes(p.header + 1, 1).map_err(err)?,
        _ => ws.set_freeze_panes(2, 0).map_err(err)?,
    };

    let chart_col = ncols as u16 + 1;
    let mut chart_row = 3u32;
    for c in &sheet.charts {
        let Some((g, p)) = sheet
            .grids
            .iter()
            .zip(placed.iter().map(|(_, p)| p))
            .find(|(g, _)| g.id == c.grid)
        else {
            continue;
        };
        // Nothing to draw (a year before any town was designated): no chart, as
        // Excel refuses a chart without a series.
        if g.rows.is_empty() || c.series.is_empty() {
            continue;
        }
        let last = p.first + g.rows.len() as u32 - 1;
        let mut chart = Chart::new(match c.kind {
            ChartKind::Line => ChartType::Line,
            ChartKind::Column => ChartType::Column,
            ChartKind::Bar => ChartType::Bar,
        });
        chart.title().set_name(&c.title);
        let cat = c.category as u16;
        for &s in &c.series {
            let s = s as u16;
            chart
                .add_series()
                .set_categories((sheet.name.as_str(), p.first, cat, last, cat))
                .set_values((sheet.name.as_str(), p.first, s, last, s))
                .set_name((sheet.name.as_str(), p.header, s));
        }
        if c.kind == ChartKind::Bar {
            // A bar chart's x axis is its value axis. First row at the top, as in the
            // table.
            chart.x_axis().set_name(&c.axis);
            chart.y_axis().set_reverse();
        } else {
            chart.y_axis().set_name(&c.axis);
        }
        let height = if c.kind == ChartKind::Bar {
            (g.rows.len() as u32 * 28 + 120).clamp(300, 900)
        } else {
            360
        };
        chart.set_width(760).set_height(height);
        ws.insert_chart(chart_row, chart_col, &chart).map_err(err)?;
        chart_row += height / 20 + 2;
    }
    Ok(names)
}

fn write_grid(
    ws: &mut Worksheet,
    g: &Grid,
    top: u32,
    f: &Formats,
    widths: &mut [f64],
) -> Result<Placed> {
    for (c, col) in g.cols.iter().enumerate() {
        ws.write_string_with_format(top, c as u16, &col.header, &f.header)
            .map_err(err)?;
        // Headers wrap: half their width is enough.
        widths[c] = widths[c].max((width(&col.header) / 2.0).ceil().max(6.0));
    }
    ws.set_row_height(top, 30).map_err(err)?;
    let first = top + 1;
    let wrap = g.id == "glossary";
    for (r, values) in g.rows.iter().enumerate() {
        let row = first + r as u32;
        for (c, v) in values.iter().enumerate() {
            let fmt = g.fmt_at(r, c);
            write_value(
                ws,
                row,
                c as u16,
                v,
                fmt,
                false,
                if wrap { &f.wrap } else { &f.text },
                f,
            )?;
            let shown = fmt.show(v);
            widths[c] = widths[c].max(width(&shown));
        }
    }
    let mut last = first + g.rows.len() as u32;
    if g.total {
        let row = last;
        let total = g.total_row();
        for (c, v) in total.iter().enumerate() {
            let col = &g.cols[c];
            if col.sum {
                let x = v.num().unwrap_or(0.0);
                let range = if g.rows.is_empty() {
                    None
                } else {
                    Some(utility::cell_range(first, c as u16, row - 1, c as u16))
                };
                let formula = match range {
                    Some(range) => {
                        Formula::new(format!("=SUM({range})")).set_result(format!("{x}"))
                    }
                    None => Formula::new("=0").set_result("0"),
                };
                ws.write_formula_with_format(row, c as u16, formula, &f.number(col.fmt, true))
                    .map_err(err)?;
                widths[c] = widths[c].max(width(&col.fmt.show(v)));
            } else {
                write_value(ws, row, c as u16, v, col.fmt, true, &f.text, f)?;
            }
        }
        last += 1;
    }
    Ok(Placed {
        header: top,
        first,
        last_data: last - 1,
    })
}

#[allow(clippy::too_many_arguments)]
fn write_value(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    v: &Value,
    fmt: Fmt,
    total: bool,
    text: &Format,
    f: &Formats,
) -> Result<()> {
    match v {
        Value::Null => ws.write_blank(row, col, &f.number(fmt, total)),
        Value::Num(x) => ws.write_number_with_format(row, col, *x, &f.number(fmt, total)),
        Value::Text(s) => {
            let format = if total {
                text.clone().set_bold().set_background_color("#F2F2F2")
            } else {
                text.clone()
            };
            ws.write_string_with_format(row, col, s, &format)
        }
    }
    .map_err(err)?;
    Ok(())
}
