//! What a report is made of, independent of its format: sheets of grids (titled tables
//! with typed, formatted columns) and charts that draw columns of a grid. The workbook
//! and the page are two renderings of one `Report`, so they cannot disagree.

/// One cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Missing (SQL NULL): an empty cell.
    Null,
    /// A number.
    Num(f64),
    /// Text.
    Text(String),
}

impl Value {
    /// The number, if any.
    pub fn num(&self) -> Option<f64> {
        match self {
            Value::Num(x) => Some(*x),
            _ => None,
        }
    }

    /// The text, or "" for a number or null.
    pub fn text(&self) -> &str {
        match self {
            Value::Text(s) => s,
            _ => "",
        }
    }
}

/// How a column's numbers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// Text as it is.
    Text,
    /// A whole number with thousands separators.
    Int,
    /// Two decimals with thousands separators (money in 亿元 or 万元, scores).
    Dec2,
    /// A fraction shown as a percentage with one decimal (同比, 完成率).
    Pct1,
    /// A year or a code: digits, no separator.
    Plain,
}

impl Fmt {
    /// The Excel number format.
    pub fn excel(self) -> &'static str {
        match self {
            Fmt::Text => "@",
            Fmt::Int => "#,##0",
            Fmt::Dec2 => "#,##0.00",
            Fmt::Pct1 => "0.0%",
            Fmt::Plain => "0",
        }
    }

    /// The value as the page prints it (the same rounding as Excel's format).
    pub fn show(self, v: &Value) -> String {
        match (self, v) {
            (_, Value::Null) => String::new(),
            (_, Value::Text(s)) => s.clone(),
            (Fmt::Text | Fmt::Plain, Value::Num(x)) => format!("{x}"),
            (Fmt::Int, Value::Num(x)) => thousands(&format!("{:.0}", x)),
            (Fmt::Dec2, Value::Num(x)) => thousands(&format!("{:.2}", x)),
            (Fmt::Pct1, Value::Num(x)) => format!("{:.1}%", x * 100.0),
        }
    }
}

/// `1234567.89` → `1,234,567.89`.
fn thousands(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    // "-0.00" reads as a negative nothing.
    let sign = if out.chars().all(|c| c == '0' || c == ',')
        && frac.chars().all(|c| c == '0' || c == '.')
    {
        ""
    } else {
        sign
    };
    format!("{sign}{out}{frac}")
}

/// One column of a grid.
#[derive(Debug, Clone)]
pub struct Col {
    /// A stable key (the mart column it shows, or a name of the report's own): the
    /// page's `data-k` attribute and the glossary entry.
    pub key: String,
    /// The header, Chinese, with the unit.
    pub header: String,
    /// Number format.
    pub fmt: Fmt,
    /// Whether the 合计 row sums this column.
    pub sum: bool,
}

impl Col {
    /// A column.
    pub fn new(key: &str, header: impl Into<String>, fmt: Fmt) -> Col {
        Col {
            key: key.to_string(),
            header: header.into(),
            fmt,
            sum: false,
        }
    }

    /// The same column, summed in the 合计 row.
    pub fn summed(mut self) -> Col {
        self.sum = true;
        self
    }
}

/// A titled table.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Stable id (the page's `data-grid`, the workbook's defined names).
    pub id: String,
    /// Title shown above it.
    pub title: String,
    /// Columns.
    pub cols: Vec<Col>,
    /// Rows, each as long as `cols`.
    pub rows: Vec<Vec<Value>>,
    /// Each row's id (a town_id, a county code, a year …), for the page's `data-id`.
    pub row_ids: Vec<String>,
    /// Whether a 合计 row follows.
    pub total: bool,
    /// A line under the title (what the rows cover).
    pub note: Option<String>,
    /// Per row, the format of its `Dec2` cells (a grid whose rows are indicators of
    /// different kinds: counts, money, fractions); empty for none.
    pub row_fmt: Vec<Fmt>,
}

impl Grid {
    /// The 合计 row: the sum of each summed column, "合计" in the first, empty elsewhere.
    pub fn total_row(&self) -> Vec<Value> {
        self.cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    Value::Text("合计".into())
                } else if c.sum {
                    Value::Num(self.rows.iter().filter_map(|r| r[i].num()).sum())
                } else {
                    Value::Null
                }
            })
            .collect()
    }

    /// The format of cell (`row`, `col`); the 合计 row is `row == rows.len()`.
    pub fn fmt_at(&self, row: usize, col: usize) -> Fmt {
        let f = self.cols[col].fmt;
        match self.row_fmt.get(row) {
            Some(r) if f == Fmt::Dec2 => *r,
            _ => f,
        }
    }

    /// The index of a column by key.
    pub fn col(&self, key: &str) -> Option<usize> {
        self.cols.iter().position(|c| c.key == key)
    }
}

/// Chart kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Lines over categories (years).
    Line,
    /// Vertical bars.
    Column,
    /// Horizontal bars (rankings).
    Bar,
}

/// A chart of some columns of a grid of the same sheet: the categories are the values
/// of one column, each series another column.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable id (the page's `data-chart`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: ChartKind,
    /// The grid it draws.
    pub grid: String,
    /// The column of category labels.
    pub category: usize,
    /// The columns drawn, one series each.
    pub series: Vec<usize>,
    /// The value axis' title (with the unit).
    pub axis: String,
}

/// One sheet of the workbook, one section of the page.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// Sheet name (at most 31 characters, none of `[]:*?/\`).
    pub name: String,
    /// Heading.
    pub title: String,
    /// Tables, top to bottom.
    pub grids: Vec<Grid>,
    /// Charts.
    pub charts: Vec<Chart>,
}

impl Sheet {
    /// A grid by id.
    pub fn grid(&self, id: &str) -> Option<&Grid> {
        self.grids.iter().find(|g| g.id == id)
    }
}

/// What a report is about.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The report year.
    pub year: i32,
    /// The run whose marts it reads.
    pub run_id: String,
    /// The run date (the run's as_of).
    pub run_date: String,
    /// When the run committed (RFC 3339, UTC).
    pub committed_at: String,
    /// When the run committed, microseconds since the epoch: the workbook's creation
    /// time, so one run always gives the same bytes.
    pub committed_micros: i64,
    /// townstat's version.
    pub version: String,
}

impl Meta {
    /// The line every sheet and the page carry.
    pub fn line(&self) -> String {
        format!(
            "运行编号 {} · 运行日期 {} · 提交于 {} · townstat {}",
            self.run_id, self.run_date, self.committed_at, self.version
        )
    }

    /// The report's title.
    pub fn title(&self) -> String {
        format!("大同市专业镇 {} 年度评估与进展报告", self.year)
    }
}

/// A whole report.
#[derive(Debug, Clone)]
pub struct Report {
    /// What it is about.
    pub meta: Meta,
    /// Sheets in order.
    pub sheets: Vec<Sheet>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_excel_formats_show_them() {
        assert_eq!(Fmt::Dec2.show(&Value::Num(1234567.891)), "1,234,567.89");
        assert_eq!(Fmt::Dec2.show(&Value::Num(-0.001)), "0.00");
        assert_eq!(Fmt::Dec2.show(&Value::Num(-1234.5)), "-1,234.50");
        assert_eq!(Fmt::Int.show(&Value::Num(999.0)), "999");
        assert_eq!(Fmt::Int.show(&Value::Num(1000.0)), "1,000");
        assert_eq!(Fmt::Pct1.show(&Value::Num(0.0634)), "6.3%");
        assert_eq!(Fmt::Pct1.show(&Value::Null), "");
        assert_eq!(Fmt::Plain.show(&Value::Num(2025.0)), "2025");
    }

    #[test]
    fn the_total_row_sums_only_summed_columns() {
        let g = Grid {
            id: "g".into(),
            title: "t".into(),
            cols: vec![
                Col::new("name", "名称", Fmt::Text),
                Col::new("n", "数", Fmt::Int).summed(),
                Col::new("r", "率", Fmt::Pct1),
            ],
            rows: vec![
                vec![Value::Text("a".into()), Value::Num(2.0), Value::Num(0.5)],
                vec![Value::Text("b".into()), Value::Null, Value::Num(0.1)],
                vec![Value::Text("c".into()), Value::Num(3.0), Value::Null],
            ],
            row_ids: vec!["a".into(), "b".into(), "c".into()],
            total: true,
            note: None,
            row_fmt: vec![],
        };
        assert_eq!(
            g.total_row(),
            vec![Value::Text("合计".into()), Value::Num(5.0), Value::Null]
        );
    }
}
