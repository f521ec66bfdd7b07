//! Logical values of generated rows and how one value is written in a given file: the
//! date styles, money units and suffixes, enumeration synonyms, industry and patent
//! number spellings, typed XLSX/JSON cells. Every spelling a value may take parses back
//! to the same canonical value, which is what makes exact duplicates written in other
//! styles still exact duplicates.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use townstat_domain::industry::Industries;
use townstat_domain::number::Unit;

/// The random generator of every stream.
pub type R = rand_chacha::ChaCha8Rng;

/// A random element of a non-empty slice.
pub fn pick<'a, T>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A date from constant parts (never fails for the constants used here).
pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The last day of the data period; nothing clean lies after it.
pub fn period_end() -> NaiveDate {
    ymd(2025, 12, 31)
}

/// A uniform date in `[a, b]` (a when the range is empty).
pub fn date_between(rng: &mut R, a: NaiveDate, b: NaiveDate) -> NaiveDate {
    let days = (b - a).num_days();
    if days <= 0 {
        return a;
    }
    a + chrono::Days::new(rng.random_range(0..=days) as u64)
}

/// A logical value, before it is spelled for a file.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// No value.
    Null,
    /// Free text (names, addresses, titles, institutions, ids), already normalized.
    Text(String),
    /// A USCC.
    Code(String),
    /// A date.
    Date(NaiveDate),
    /// A month (first day).
    Month(NaiveDate),
    /// A year.
    Year(i32),
    /// Money in 元 cents.
    Money(i128),
    /// A count.
    Count(i64),
    /// A yes/no value.
    Bool(bool),
    /// A GB/T 4754 class code.
    Industry(String),
    /// A division code as written (6, 9 or 12 digits).
    Division(String),
    /// An enumeration: alias table and canonical value.
    Enum(&'static str, &'static str),
    /// A patent number: digits and check character.
    PatentNo(String, char),
    /// Patent applicants.
    List(Vec<String>),
    /// Applicants' USCCs aligned by position.
    CodeList(Vec<Option<String>>),
    /// Injected text, written verbatim in every format.
    Raw(String),
}

impl V {
    /// Whether the value is absent.
    pub fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }
}

/// A generated row: canonical column names with logical values, plus what the
/// generator knows about how ingestion will treat it.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Values by canonical column (`ref_name` is the referencing name column).
    pub vals: Vec<(&'static str, V)>,
    /// Warnings ingestion will record for the row (enterprise rows).
    pub warn: Vec<&'static str>,
    /// Whether the enterprise's name links to exactly one registry entry.
    pub name_ok: bool,
    /// Patent applicants: whether each links by name alone.
    pub links: Vec<bool>,
}

const NULL: V = V::Null;

impl Row {
    /// The value of a column (`Null` when the row has none).
    pub fn get(&self, k: &str) -> &V {
        self.vals
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, v)| v)
            .unwrap_or(&NULL)
    }

    /// Sets a column's value.
    pub fn set(&mut self, k: &'static str, v: V) {
        match self.vals.iter_mut().find(|(c, _)| *c == k) {
            Some(slot) => slot.1 = v,
            None => self.vals.push((k, v)),
        }
    }
}

/// One column of a file: its canonical column, the header written, the money unit
/// the header states, and whether years are written as dates.
#[derive(Debug, Clone)]
pub struct Col {
    /// Canonical column, `ref_name`, or `_…` for a column ingestion ignores.
    pub canon: &'static str,
    /// Header text.
    pub header: &'static str,
    /// Unit the header states (元 when none).
    pub unit: Unit,
    /// Years are written as a date in that year (`认定日期`).
    pub year_as_date: bool,
}

/// A column.
pub fn col(canon: &'static str, header: &'static str) -> Col {
    Col {
        canon,
        header,
        unit: Unit::from_header(header).unwrap_or(Unit::Yuan),
        year_as_date: false,
    }
}

/// A year column written as dates.
pub fn col_date(canon: &'static str, header: &'static str) -> Col {
    Col {
        year_as_date: true,
        ..col(canon, header)
    }
}

/// How values are spelled in one file.
#[derive(Debug, Clone)]
pub struct Style {
    /// Date styles to draw from (see [`date_text`]).
    pub dates: &'static [u8],
    /// Probability that money carries a unit suffix (`3.5亿`, `1200万元`).
    pub suffix: f64,
    /// Thousands separators in plain numbers.
    pub thousands: bool,
    /// Probability of full-width brackets in names.
    pub fullwidth: f64,
    /// Replace a space in text by a line break (CSV with quoted multi-line fields).
    pub multiline: bool,
    /// XLSX/JSON: write numbers, dates and booleans as typed cells.
    pub typed: bool,
    /// Probability that an absent optional value is written as a null token.
    pub null_tokens: f64,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            dates: &[0, 1],
            suffix: 0.0,
            thousands: false,
            fullwidth: 0.0,
            multiline: false,
            typed: false,
            null_tokens: 0.0,
        }
    }
}

/// The file format a cell is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Text cells only.
    Csv,
    /// Typed cells allowed.
    Xlsx,
    /// JSON values.
    Ndjson,
}

/// A cell as a sink writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing.
    Empty,
    /// Text.
    Text(String),
    /// A number.
    Num(f64),
    /// An XLSX date cell with a date number format.
    Date(NaiveDate),
    /// An XLSX date cell formatted as a month.
    Month(NaiveDate),
    /// A boolean.
    Bool(bool),
}

/// A date in one of the accepted styles: 0 `2023-05-01`, 1 `2023/5/1`, 2 `2023.5.1`,
/// 3 `2023年5月1日`, 4 `20230501`, 5 ISO date-time.
pub fn date_text(d: NaiveDate, style: u8) -> String {
    let (y, m, day) = (d.year(), d.month(), d.day());
    match style {
        1 => format!("{y}/{m}/{day}"),
        2 => format!("{y}.{m}.{day}"),
        3 => format!("{y}年{m}月{day}日"),
        4 => format!("{y}{m:02}{day:02}"),
        5 => format!("{y}-{m:02}-{day:02} 00:00:00"),
        _ => format!("{y}-{m:02}-{day:02}"),
    }
}

fn month_text(d: NaiveDate, style: u32) -> String {
    let (y, m) = (d.year(), d.month());
    match style {
        1 => format!("{y}/{m:02}"),
        2 => format!("{y}年{m}月"),
        3 => format!("{y}{m:02}"),
        _ => format!("{y}-{m:02}"),
    }
}

/// Exact decimal text of cents in a unit (`123456789` cents in 万元 is `123.456789`).
pub fn decimal(cents: i128, unit: Unit, thousands: bool) -> String {
    let digits = unit.exponent() + 2;
    let scale = 10i128.pow(digits);
    let a = cents.abs();
    let int = (a / scale).to_string();
    let int = if thousands { group(&int) } else { int };
    let frac = format!("{:0width$}", a % scale, width = digits as usize);
    let frac = frac.trim_end_matches('0');
    let sign = if cents < 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn group(int: &str) -> String {
    let bytes = int.as_bytes();
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*b as char);
    }
    out
}

/// Synonyms written for each canonical enumeration value; every one is in
/// `pipelines/enums.toml` (a test checks).
pub fn aliases(table: &str, canonical: &str) -> &'static [&'static str] {
    match (table, canonical) {
        ("entity_kind", "enterprise") => &[
            "有限责任公司",
            "有限责任公司(自然人投资或控股)",
            "有限责任公司（自然人投资或控股）",
            "股份有限公司(非上市)",
            "其他有限责任公司",
            "有限责任公司(法人独资)",
            "私营企业",
            "企业",
        ],
        ("entity_kind", "individual") => &["个体工商户", "个体户", "个体"],
        ("entity_kind", "cooperative") => &["农民专业合作社", "专业合作社", "合作社"],
        ("status", "active") => &["存续", "在业", "开业", "存续", "在营"],
        ("status", "deregistered") => &["注销", "已注销"],
        ("status", "revoked") => &["吊销", "吊销,未注销", "吊销未注销"],
        ("status", "moved_out") => &["迁出", "已迁出"],
        ("designation_kind", "srdi") => &["专精特新中小企业", "专精特新", "专精特新企业"],
        ("designation_kind", "little_giant") => &[
            "专精特新“小巨人”企业",
            "专精特新\"小巨人\"",
            "专精特新小巨人",
            "小巨人",
        ],
        ("designation_kind", "single_champion") => {
            &["制造业单项冠军", "单项冠军", "制造业单项冠军示范企业"]
        }
        ("designation_kind", "high_tech") => &["高新技术企业", "国家高新技术企业", "高新企业"],
        ("designation_kind", "tech_sme") => &["科技型中小企业", "科技型中小"],
        ("designation_kind", "leading") => &["龙头企业", "农业产业化龙头企业", "产业链龙头企业"],
        ("designation_kind", "tech_center") => &["企业技术中心", "技术中心"],
        ("designation_kind", "engineering_center") => &["工程技术研究中心", "工程研究中心"],
        ("designation_kind", "key_lab") => &["重点实验室"],
        ("designation_level", "national") => &["国家级", "国家", "national"],
        ("designation_level", "provincial") => &["省级", "省"],
        ("designation_level", "city") => &["市级", "市"],
        ("patent_type", "invention") => &["发明", "发明专利"],
        ("patent_type", "utility_model") => &["实用新型", "实用新型专利"],
        ("patent_type", "design") => &["外观设计", "外观设计专利"],
        ("instrument", "bank_loan") => &["银行贷款", "流动资金贷款", "贷款"],
        ("instrument", "equity") => &["股权融资", "风险投资", "私募股权"],
        ("instrument", "guide_fund") => &["政府引导基金", "产业引导基金"],
        ("instrument", "bond") => &["债券", "公司债", "企业债"],
        ("instrument", "listing") => &["上市", "IPO", "挂牌", "首发上市"],
        ("instrument", "lease") => &["融资租赁"],
        ("instrument", "guarantee") => &["融资担保", "担保贷款"],
        ("currency", "CNY") => &["人民币", "CNY", "RMB", "元", "人民币"],
        ("market", "main_board") => &["主板", "沪市主板", "深市主板"],
        ("market", "chinext") => &["创业板"],
        ("market", "star") => &["科创板"],
        ("market", "bse") => &["北交所"],
        ("market", "neeq") => &["新三板", "全国中小企业股份转让系统"],
        ("market", "regional_equity") => &["山西股权交易中心", "区域股权市场"],
        ("market", "overseas") => &["港股", "境外"],
        ("quality_mark_kind", "regional_brand") => &["区域品牌", "区域公用品牌"],
        ("quality_mark_kind", "collective_mark") => &["集体商标"],
        ("quality_mark_kind", "certification_mark") => &["证明商标"],
        ("quality_mark_kind", "geographical_indication") => {
            &["地理标志", "地理标志产品", "地理标志商标"]
        }
        ("quality_mark_kind", "national_standard") => &["国家标准", "主导制定国家标准"],
        ("quality_mark_kind", "industry_standard") => &["行业标准", "主导制定行业标准"],
        ("quality_mark_kind", "group_standard") => &["团体标准"],
        ("quality_mark_kind", "international_certification") => &["国际认证", "国际标准认证"],
        ("quality_mark_kind", "public_service_platform") => &["公共服务平台"],
        ("quality_mark_kind", "innovation_platform") => &["创新平台", "创新中心"],
        ("quality_mark_level", "international") => &["国际", "国际级"],
        ("quality_mark_level", "national") => &["国家级", "国家"],
        ("quality_mark_level", "provincial") => &["省级", "省"],
        ("quality_mark_level", "city") => &["市级", "市"],
        ("project_stage", "signed") => &["签约", "已签约", "签约项目"],
        ("project_stage", "started") => &["开工", "已开工", "在建", "开工建设"],
        ("project_stage", "in_production") => &["投产", "已投产", "建成投产"],
        ("project_stage", "at_capacity") => &["达效", "达产", "达产达效", "已达效"],
        _ => &[],
    }
}

fn fullwidth(s: &str) -> String {
    s.replace('(', "（").replace(')', "）")
}

/// Whether text of this many significant digits survives an `f64` round trip.
fn fits_f64(text: &str) -> bool {
    text.chars().filter(char::is_ascii_digit).count() <= 15
}

/// Spells one value for one column of one file.
pub fn render(
    v: &V,
    col: &Col,
    target: Target,
    style: &Style,
    rng: &mut R,
    industries: &Industries,
) -> Cell {
    let typed = style.typed && target != Target::Csv;
    match v {
        V::Null => {
            if style.null_tokens > 0.0 && rng.random_bool(style.null_tokens) {
                Cell::Text(pick(rng, &["-", "无", "/", "—"]).to_string())
            } else {
                Cell::Empty
            }
        }
        V::Text(s) => {
            let mut s = s.clone();
            if style.fullwidth > 0.0 && rng.random_bool(style.fullwidth) {
                s = fullwidth(&s);
            }
            let long_text = matches!(col.canon, "title" | "address");
            if style.multiline && long_text && s.contains(' ') && rng.random_bool(0.7) {
                s = s.replacen(' ', "\n", 1);
            }
            Cell::Text(s)
        }
        V::Code(s) => {
            // Lower case is accepted and upper-cased.
            if rng.random_bool(0.03) {
                Cell::Text(s.to_lowercase())
            } else {
                Cell::Text(s.clone())
            }
        }
        V::Date(d) => {
            if target == Target::Xlsx && typed && rng.random_bool(0.85) {
                Cell::Date(*d)
            } else {
                Cell::Text(date_text(*d, *pick(rng, style.dates)))
            }
        }
        V::Month(d) => {
            if target == Target::Xlsx && typed && rng.random_bool(0.7) {
                Cell::Month(*d)
            } else {
                Cell::Text(month_text(*d, rng.random_range(0..4)))
            }
        }
        V::Year(y) => {
            if col.year_as_date {
                let d = date_between(rng, ymd(*y, 1, 1), ymd(*y, 12, 31));
                if target == Target::Xlsx && typed {
                    Cell::Date(d)
                } else {
                    Cell::Text(date_text(d, *pick(rng, style.dates)))
                }
            } else if typed && rng.random_bool(0.8) {
                Cell::Num(f64::from(*y))
            } else {
                Cell::Text(
                    pick(rng, &[format!("{y}"), format!("{y}年"), format!("{y}年度")]).clone(),
                )
            }
        }
        V::Money(c) => {
            if style.suffix > 0.0 && rng.random_bool(style.suffix) {
                let a = c.abs();
                let (unit, suffixes): (Unit, &[&str]) =
                    if a >= 100_000_000 * 100 && rng.random_bool(0.6) {
                        (Unit::Yi, &["亿", "亿元"])
                    } else if a >= 10_000 * 100 && rng.random_bool(0.8) {
                        (Unit::Wan, &["万元", "万"])
                    } else {
                        (Unit::Yuan, &["元"])
                    };
                Cell::Text(format!(
                    "{}{}",
                    decimal(*c, unit, false),
                    pick(rng, suffixes)
                ))
            } else {
                let text = decimal(*c, col.unit, style.thousands && target == Target::Csv);
                match text.parse::<f64>() {
                    Ok(n) if typed && fits_f64(&text) => Cell::Num(n),
                    _ => Cell::Text(text),
                }
            }
        }
        V::Count(n) => {
            if typed {
                Cell::Num(*n as f64)
            } else if style.thousands && *n >= 1000 {
                Cell::Text(group(&n.to_string()))
            } else if rng.random_bool(0.04) {
                Cell::Text(format!("{n}人"))
            } else {
                Cell::Text(n.to_string())
            }
        }
        V::Bool(b) => {
            if typed && rng.random_bool(0.5) {
                Cell::Bool(*b)
            } else {
                let forms: &[&str] = if *b {
                    &["是", "Y", "1", "√", "是", "true"]
                } else {
                    &["否", "N", "0", "×", "否", "false"]
                };
                Cell::Text(pick(rng, forms).to_string())
            }
        }
        V::Industry(code) => {
            let row = industries.get(code);
            match rng.random_range(0..3) {
                0 => Cell::Text(format!(
                    "{}{code}",
                    row.map(|r| r.section.as_str()).unwrap_or("")
                )),
                1 if target == Target::Csv => Cell::Text(format!(
                    "{code} {}",
                    row.map(|r| r.name.as_str()).unwrap_or("")
                )),
                _ => Cell::Text(code.clone()),
            }
        }
        V::Division(code) => match code.parse::<f64>() {
            Ok(n) if typed && rng.random_bool(0.6) => Cell::Num(n),
            _ => Cell::Text(code.clone()),
        },
        V::Enum(table, canonical) => {
            let list = aliases(table, canonical);
            if list.is_empty() {
                Cell::Text(canonical.to_string())
            } else {
                Cell::Text(pick(rng, list).to_string())
            }
        }
        V::PatentNo(digits, check) => {
            let d = digits;
            let text = match rng.random_range(0..6) {
                1 => format!("CN{d}.{check}"),
                2 => format!("ZL{d}.{check}"),
                3 => format!("{d}{check}"),
                4 if d.len() == 12 => format!("ZL {} {} {}.{check}", &d[..4], &d[4..8], &d[8..]),
                _ => format!("{d}.{check}"),
            };
            Cell::Text(text)
        }
        V::List(names) => {
            let sep = *pick(rng, &[";", "；", "、", ";"]);
            let mut s = names.join(sep);
            if style.fullwidth > 0.0 && rng.random_bool(style.fullwidth) {
                s = fullwidth(&s);
            }
            Cell::Text(s)
        }
        V::CodeList(codes) => {
            if codes.iter().all(Option::is_none) {
                Cell::Empty
            } else {
                Cell::Text(
                    codes
                        .iter()
                        .map(|c| c.clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(";"),
                )
            }
        }
        V::Raw(s) => Cell::Text(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use townstat_domain::number::parse_money;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(123_456_789, Unit::Wan, false), "123.456789");
        assert_eq!(decimal(1_200_000_000, Unit::Wan, false), "1200");
        assert_eq!(decimal(123_456_700, Unit::Yuan, true), "1,234,567");
        assert_eq!(decimal(-150, Unit::Yuan, false), "-1.5");
        for c in [1i128, 99, 10_000, 123_456_789_000, 2_000_000_000_000] {
            for u in [Unit::Yuan, Unit::Wan, Unit::Yi] {
                let t = decimal(c, u, true);
                assert_eq!(parse_money(&t, Some(u), Unit::Yuan), Ok(c), "{t}");
            }
        }
    }

    #[test]
    fn aliases_are_in_the_pipeline_tables() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/enums.toml");
        let tables = townstat_domain::enums::AliasTables::load(&path).expect("enums.toml loads");
        // Every canonical value of the domain's enumerations, except `other` entity
        // kinds, which the generator never writes.
        for (table, values) in townstat_domain::enums::ENUMS {
            for v in *values {
                if (*table, *v) == ("entity_kind", "other") {
                    continue;
                }
                let list = aliases(table, v);
                assert!(!list.is_empty(), "{table} {v}");
                for a in list {
                    assert_eq!(tables.lookup(table, a).as_deref(), Ok(*v), "{table} {a}");
                }
            }
        }
    }
}
