//! Patent applications (专利申请): numbers with correct check characters (12-digit since
//! 2003, some 8-digit older ones, a few PCT), one to three applicants linked by USCC,
//! by exact name, or not at all (universities, people, firms outside the city: those
//! load with the warning `unlinked_applicant`).

use std::collections::HashSet;

use chrono::Datelike;
use rand::Rng;

use crate::emit::{FileSpec, Kind, Mutation};
use crate::names;
use crate::sink::{Enc, FileFormat};
use crate::value::{R, Row, Style, V, col, date_between, period_end, pick, ymd};
use crate::world::{Ent, World};

/// The patent kind.
#[derive(Default)]
pub struct Patent {
    numbers: HashSet<String>,
}

const THEMES: &[(&str, &[&str], &[&str])] = &[
    (
        "3",
        &[
            "高铁车组转向架",
            "铁路货车车钩缓冲装置",
            "动车组制动盘",
            "机车牵引电机散热器",
            "轨道车辆车体焊接工装",
        ],
        &["B61D 17/00", "B61F 5/00", "B61H 1/00"],
    ),
    (
        "35",
        &[
            "液压支架",
            "采煤机截割部",
            "刮板输送机链轮",
            "掘进机除尘装置",
            "煤矿巷道支护装置",
        ],
        &["E21D 23/04", "E21C 25/06", "B65G 19/24"],
    ),
    (
        "30",
        &[
            "高纯石墨",
            "石墨电极接头",
            "等静压石墨",
            "碳素焙烧炉",
            "负极材料",
        ],
        &["C01B 32/205", "C04B 35/52", "H01M 4/583"],
    ),
    (
        "27",
        &[
            "黄芪提取物",
            "中药配方颗粒",
            "头孢类原料药",
            "缓释片",
            "黄芪多糖",
        ],
        &["A61K 36/481", "A61K 9/20", "A61P 37/04"],
    ),
    (
        "01",
        &["黄花菜干制品", "黄花菜保鲜", "黄芪种苗", "中药材烘干"],
        &["A23B 7/02", "A01G 22/00", "A23L 19/00"],
    ),
    (
        "22",
        &["瓦楞纸板", "食品包装纸", "纸浆模塑餐盒"],
        &["D21H 11/00", "B31F 1/20", "D21J 3/00"],
    ),
    (
        "25",
        &["煤质活性炭", "活性炭再生", "柱状活性炭成型"],
        &["C01B 32/318", "C01B 32/354", "B01J 20/20"],
    ),
    (
        "42",
        &["废钢破碎", "再生铝熔炼", "金属屑压块"],
        &["C22B 7/00", "B30B 9/32", "B02C 18/00"],
    ),
    (
        "6",
        &["数据中心液冷", "分布式存储", "机房巡检"],
        &["G06F 16/27", "H05K 7/20", "G06F 11/30"],
    ),
    (
        "",
        &[
            "智能控制系统",
            "检测装置",
            "节能设备",
            "除尘装置",
            "输送机构",
        ],
        &["G05B 19/418", "G01N 33/00", "B01D 46/00"],
    ),
];

fn theme(industry: &str) -> usize {
    THEMES
        .iter()
        .position(|(p, _, _)| !p.is_empty() && industry.starts_with(p))
        .unwrap_or(THEMES.len() - 1)
}

fn title(rng: &mut R, industry: &str, type_digit: u8) -> (String, String) {
    let (_, objects, ipcs) = THEMES[theme(industry)];
    let object = pick(rng, objects);
    let mut t = match type_digit {
        1 | 8 => format!(
            "一种{object}{}",
            pick(
                rng,
                &["的制备方法", "及其制备方法", "的检测方法", "的控制方法"]
            )
        ),
        3 => format!("{object}{}", pick(rng, &["包装盒", "标识牌", "控制面板"])),
        _ => format!(
            "一种{object}{}",
            pick(rng, &["装置", "结构", "用夹具", "设备"])
        ),
    };
    // Some titles have two parts; a multi-line CSV cell breaks them at the space.
    if rng.random_bool(0.2) {
        t.push(' ');
        t.push_str(pick::<&str>(rng, &["及其应用", "及使用方法", "和系统"]));
    }
    (t, pick(rng, ipcs).to_string())
}

fn type_canonical(digit: u8) -> &'static str {
    match digit {
        1 | 8 => "invention",
        3 => "design",
        _ => "utility_model",
    }
}

impl Patent {
    fn number(&mut self, rng: &mut R, year: i32, digit: u8) -> (String, char) {
        loop {
            let digits = if year < 2003 {
                format!(
                    "{:02}{digit}{:05}",
                    year % 100,
                    rng.random_range(0..100_000)
                )
            } else {
                format!("{year}{digit}{:07}", rng.random_range(0..10_000_000))
            };
            let Some(check) = townstat_domain::patent::check_char(&digits) else {
                continue;
            };
            if self.numbers.insert(digits.clone()) {
                return (digits, check);
            }
        }
    }

    /// One application; `who` are the applicants: (name, USCC if given, name links).
    fn row(
        &mut self,
        rng: &mut R,
        industry: &str,
        year: i32,
        earliest: chrono::NaiveDate,
        who: Vec<(String, Option<String>, bool)>,
    ) -> Row {
        let digit = match rng.random_range(0..100) {
            0..40 => 1,
            40..85 => 2,
            85..97 => 3,
            97..99 if year >= 2003 => 8,
            _ if year >= 2003 => 9,
            _ => 2,
        };
        let (digits, check) = self.number(rng, year, digit);
        let applied = date_between(
            rng,
            ymd(year, 1, 1).max(earliest),
            ymd(year, 12, 31).min(period_end()),
        );
        let (lo, hi) = match digit {
            1 | 8 => (420, 1100),
            3 => (100, 260),
            _ => (150, 380),
        };
        let granted = applied + chrono::Days::new(rng.random_range(lo..hi));
        let granted = if granted <= period_end() && rng.random_bool(0.75) {
            V::Date(granted)
        } else {
            V::Null
        };
        let (t, ipc) = title(rng, industry, digit);
        let stated = if rng.random_bool(0.8) {
            V::Enum("patent_type", type_canonical(digit))
        } else {
            V::Null
        };
        let links = who.iter().map(|w| w.2).collect();
        Row {
            vals: vec![
                ("application_no", V::PatentNo(digits, check)),
                ("patent_type", stated),
                ("title", V::Text(t)),
                ("applied_on", V::Date(applied)),
                ("granted_on", granted),
                (
                    "applicants",
                    V::List(who.iter().map(|w| w.0.clone()).collect()),
                ),
                (
                    "applicant_uscc",
                    V::CodeList(who.into_iter().map(|w| w.1).collect()),
                ),
                (
                    "ipc",
                    if rng.random_bool(0.9) {
                        V::Text(ipc)
                    } else {
                        V::Null
                    },
                ),
            ],
            links,
            ..Row::default()
        }
    }
}

/// An enterprise as applicant: by USCC and name, or (when its name is unique) by name
/// alone.
fn applicant(rng: &mut R, e: &Ent) -> (String, Option<String>, bool) {
    let by_uscc = !e.name_links() || rng.random_bool(0.7);
    (
        e.name.clone(),
        by_uscc.then(|| e.uscc.clone()),
        e.name_links(),
    )
}

fn outsider(rng: &mut R) -> (String, Option<String>, bool) {
    let name = match rng.random_range(0..3) {
        0 => pick(rng, names::UNIVERSITIES).to_string(),
        1 => names::person(rng),
        _ => names::outside_firm(rng),
    };
    (name, None, false)
}

fn wrong_check(check: char) -> char {
    let all = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X'];
    let i = all.iter().position(|c| *c == check).unwrap_or(0);
    all[(i + 3) % all.len()]
}

fn set_bad_number(r: &mut Row, _: &World, _: &mut R) {
    if let V::PatentNo(d, c) = r.get("application_no").clone() {
        r.set("application_no", V::PatentNo(d, wrong_check(c)));
    }
}
fn set_type_mismatch(r: &mut Row, _: &World, _: &mut R) {
    if let V::PatentNo(d, _) = r.get("application_no").clone() {
        let digit = if d.len() == 12 {
            d.as_bytes()[4]
        } else {
            d.as_bytes()[2]
        };
        let wrong = match digit {
            b'3' => "invention",
            b'1' | b'8' => "design",
            _ => "invention",
        };
        r.set("patent_type", V::Enum("patent_type", wrong));
    }
}
fn set_year_mismatch(r: &mut Row, _: &World, _: &mut R) {
    if let V::Date(d) = r.get("applied_on").clone() {
        let y = if d.year() < 2025 {
            d.year() + 1
        } else {
            d.year() - 1
        };
        r.set("applied_on", V::Date(ymd(y, d.month(), d.day().min(28))));
        r.set("granted_on", V::Null);
    }
}
fn set_order(r: &mut Row, _: &World, _: &mut R) {
    if let V::Date(d) = r.get("applied_on").clone() {
        let applied = ymd(d.year(), 12, 20);
        r.set("applied_on", V::Date(applied));
        r.set("granted_on", V::Date(ymd(d.year(), 3, 2)));
    }
}
fn set_no_applicants(r: &mut Row, _: &World, _: &mut R) {
    r.set("applicants", V::Null);
    r.set("applicant_uscc", V::Null);
}
fn set_bad_date(r: &mut Row, _: &World, rng: &mut R) {
    r.set(
        "applied_on",
        V::Raw(pick(rng, &["2019-13-01", "19/3/5"]).to_string()),
    );
}
fn set_future_grant(r: &mut Row, _: &World, rng: &mut R) {
    r.set("granted_on", V::Date(ymd(2099, rng.random_range(1..13), 9)));
}
fn set_bad_applicant_uscc(r: &mut Row, _: &World, rng: &mut R) {
    if let V::List(names) = r.get("applicants").clone() {
        let mut codes: Vec<Option<String>> = match r.get("applicant_uscc") {
            V::CodeList(c) => c.clone(),
            _ => vec![None; names.len()],
        };
        codes.resize(names.len(), None);
        let probe = Row {
            vals: vec![("uscc", codes[0].clone().map(V::Code).unwrap_or(V::Null))],
            ..Row::default()
        };
        codes[0] = Some(super::bad_uscc(&probe, rng));
        r.set("applicant_uscc", V::CodeList(codes));
    }
}

impl Kind for Patent {
    fn name(&self) -> &'static str {
        "patent"
    }

    fn files(&self) -> Vec<FileSpec> {
        vec![
            FileSpec {
                name: "patent_01_cnipa.xlsx",
                format: FileFormat::Xlsx {
                    title: Some("大同市专利申请信息"),
                    blank_row: false,
                    sheet: "专利",
                },
                cols: vec![
                    col("application_no", "申请号"),
                    col("patent_type", "专利类型"),
                    col("title", "专利名称"),
                    col("applied_on", "申请日"),
                    col("granted_on", "授权公告日"),
                    col("applicants", "申请人"),
                    col("applicant_uscc", "申请人统一社会信用代码"),
                    col("ipc", "主分类号"),
                ],
                style: Style {
                    typed: true,
                    ..Style::default()
                },
                share: 0.25,
                by_name: false,
            },
            FileSpec {
                name: "patent_02_gbk.csv",
                format: FileFormat::Csv {
                    enc: Enc::Gbk,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("application_no", "专利申请号"),
                    col("patent_type", "专利类型"),
                    col("title", "发明名称"),
                    col("applied_on", "申请日"),
                    col("granted_on", "授权日"),
                    col("applicants", "专利权人"),
                    col("applicant_uscc", "申请人统一社会信用代码"),
                    col("ipc", "IPC分类号"),
                ],
                style: Style {
                    dates: &[0, 1, 2, 3, 4],
                    fullwidth: 0.3,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "patent_03_multiline.csv",
                format: FileFormat::Csv {
                    enc: Enc::Utf8,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("application_no", "申请号"),
                    col("title", "名称"),
                    col("applied_on", "申请日"),
                    col("granted_on", "授权日"),
                    col("applicants", "申请人"),
                    col("ipc", "主分类号"),
                ],
                style: Style {
                    dates: &[0, 3],
                    multiline: true,
                    ..Style::default()
                },
                share: 0.15,
                by_name: false,
            },
            FileSpec {
                name: "patent_04_bom.csv",
                format: FileFormat::Csv {
                    enc: Enc::Bom,
                    delim: ',',
                    crlf: false,
                },
                cols: vec![
                    col("application_no", "申请号"),
                    col("patent_type", "专利类型"),
                    col("title", "专利名称"),
                    col("applied_on", "申请日"),
                    col("granted_on", "授权公告日"),
                    col("applicants", "申请人"),
                    col("applicant_uscc", "申请人统一社会信用代码"),
                    col("ipc", "主分类号"),
                ],
                style: Style {
                    dates: &[1, 4],
                    null_tokens: 0.3,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
            FileSpec {
                name: "patent_05_api.ndjson",
                format: FileFormat::Ndjson,
                cols: vec![
                    col("application_no", "application_no"),
                    col("patent_type", "patent_type"),
                    col("title", "title"),
                    col("applied_on", "applied_on"),
                    col("granted_on", "granted_on"),
                    col("applicants", "applicants"),
                    col("applicant_uscc", "applicant_uscc"),
                    col("ipc", "ipc"),
                ],
                style: Style {
                    dates: &[0, 5],
                    typed: true,
                    ..Style::default()
                },
                share: 0.2,
                by_name: false,
            },
        ]
    }

    fn estimate(&self, w: &World) -> u64 {
        let own: u64 = w.ents.iter().map(|e| u64::from(e.n_patents)).sum();
        own + (0..w.ents.len()).filter(|i| i % 23 == 7).count() as u64
    }

    fn rows_for(&mut self, w: &World, i: usize, rng: &mut R, out: &mut Vec<Row>) {
        let e = &w.ents[i];
        for _ in 0..e.n_patents {
            let first = e.established.year().max(1995);
            let last = e.last_day().year().min(2025);
            if first > last {
                break;
            }
            let old = first < 2003 && rng.random_bool(0.08);
            let year = if old {
                rng.random_range(first..=last.min(2002))
            } else {
                rng.random_range(first.max(2005)..=last.max(first.max(2005)))
            };
            if year > last {
                continue;
            }
            let mut who = vec![applicant(rng, e)];
            if rng.random_bool(0.15) {
                let other = &w.ents[rng.random_range(0..w.ents.len())];
                if other.uscc != e.uscc && other.kind == 1 && !other.name.is_empty() {
                    who.push(applicant(rng, other));
                }
            }
            if rng.random_bool(0.12) {
                who.push(outsider(rng));
            }
            let earliest = e.established;
            out.push(self.row(rng, &e.industry, year, earliest, who));
        }
        // Now and then a patent of applicants outside the registry only.
        if i % 23 == 7 {
            let year = rng.random_range(2008..=2025);
            let who = vec![outsider(rng), outsider(rng)];
            let who = if who[0].0 == who[1].0 {
                vec![who[0].clone()]
            } else {
                who
            };
            out.push(self.row(rng, &e.industry, year, ymd(year, 1, 1), who));
        }
    }

    fn mutations(&self) -> Vec<Mutation> {
        vec![
            Mutation {
                codes: &["invalid_patent_no"],
                needs: &[],
                apply: set_bad_number,
            },
            Mutation {
                codes: &["patent_type_mismatch"],
                needs: &["patent_type"],
                apply: set_type_mismatch,
            },
            Mutation {
                codes: &["year_mismatch"],
                needs: &[],
                apply: set_year_mismatch,
            },
            Mutation {
                codes: &["date_order"],
                needs: &["granted_on"],
                apply: set_order,
            },
            Mutation {
                codes: &["missing_required"],
                needs: &[],
                apply: set_no_applicants,
            },
            Mutation {
                codes: &["invalid_date"],
                needs: &[],
                apply: set_bad_date,
            },
            Mutation {
                codes: &["future_date"],
                needs: &["granted_on"],
                apply: set_future_grant,
            },
            Mutation {
                codes: &["invalid_uscc"],
                needs: &["applicant_uscc"],
                apply: set_bad_applicant_uscc,
            },
        ]
    }

    fn conflict_needs(&self) -> &'static [&'static str] {
        &["title"]
    }

    fn conflict(&self, row: &mut Row, _rng: &mut R) {
        if let V::Text(t) = row.get("title").clone() {
            row.set("title", V::Text(format!("{t}及其改进")));
        }
    }

    fn warnings(&self, row: &Row, file: &FileSpec) -> Vec<&'static str> {
        let by_code = file.has("applicant_uscc");
        let codes = match row.get("applicant_uscc") {
            V::CodeList(c) => c.clone(),
            _ => vec![],
        };
        let unlinked = row.links.iter().enumerate().any(|(i, &by_name)| {
            let has_code = by_code && codes.get(i).is_some_and(Option::is_some);
            !has_code && !by_name
        });
        if unlinked {
            vec!["unlinked_applicant"]
        } else {
            vec![]
        }
    }
}
