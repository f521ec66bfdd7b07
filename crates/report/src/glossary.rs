//! The 指标解释 sheet: every column the report shows, with its Chinese name, the unit
//! it is shown in, its definition and the tables it comes from. Definitions of mart
//! columns are `schemas/glossary.toml` (compiled in); the report's own columns (names,
//! the overview's year columns) are defined here.

use crate::model::{Col, Fmt, Grid, Sheet, Value};

/// One glossary entry: `schemas/glossary.toml`, as the domain crate loads it.
pub use townstat_domain::schema::Definition as Entry;

/// The entry of a mart column.
pub fn entry(column: &str) -> Option<&'static Entry> {
    townstat_domain::schema::definition(column)
}

/// The report's own columns: (key, definition, sources).
const OWN: &[(&str, &str, &str)] = &[
    ("name", "专业镇名称, 取自专业镇名录。", "town"),
    ("county_name", "区县名称, 取自行政区划表。", "division"),
    (
        "level",
        "认定级别: 省级或市级专业镇, 取自专业镇名录。",
        "town",
    ),
    (
        "indicator",
        "全市主要指标的名称; 数值取自全市年度指标, 同比取自全市主要指标同比。",
        "city_year, city_year_yoy",
    ),
    ("unit", "该行数值的单位。", ""),
    ("city_prev", "上一年度的全市数值。", "city_year"),
    ("city_this", "报告年度的全市数值。", "city_year"),
    (
        "city_yoy",
        "同比增长率 = (本年 − 上年) / 上年; 上年为 0 或缺失时为空。",
        "city_year_yoy",
    ),
    (
        "provincial",
        "报告年度已认定的省级专业镇数, 按当年规模档次分列。",
        "town_year, town",
    ),
    (
        "city_level",
        "报告年度已认定的市级专业镇数, 按当年规模档次分列。",
        "town_year, town",
    ),
    (
        "towns",
        "报告年度已认定的专业镇数, 按当年规模档次分列。",
        "town_year, town",
    ),
    (
        "target_name",
        "规划目标: 范围(全市或专业镇)与指标, 目标取自 targets.toml 与专业镇名录的规模目标。",
        "town_target_progress",
    ),
];

/// The glossary sheet of a report's sheets.
pub fn sheet(sheets: &[Sheet]) -> Sheet {
    let mut seen: Vec<String> = vec![];
    let mut rows = vec![];
    let mut ids = vec![];
    for g in sheets.iter().flat_map(|s| &s.grids) {
        // The trend grid's columns are towns; its figures are revenue.
        let cols: Vec<(String, String)> = if g.id == "trend" {
            vec![("revenue".into(), "营业收入(亿元)".into())]
        } else {
            g.cols
                .iter()
                .map(|c| (c.key.clone(), c.header.clone()))
                .collect()
        };
        for (key, header) in cols {
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let (definition, sources, stored) =
                if let Some((_, d, s)) = OWN.iter().find(|(k, _, _)| *k == key) {
                    (d.to_string(), s.to_string(), String::new())
                } else if let Some(ind) = key.strip_suffix("_percentile") {
                    let p = entry("percentile");
                    (
                        format!(
                            "分项“{}”的百分位得分(0–100)。{}",
                            crate::data::name_of(ind),
                            p.map(|e| e.definition.as_str()).unwrap_or("")
                        ),
                        "town_evaluation_component".to_string(),
                        String::new(),
                    )
                } else if let Some(e) = entry(&key) {
                    (e.definition.clone(), e.sources.join(", "), e.unit.clone())
                } else {
                    continue;
                };
            ids.push(key.clone());
            let name = townstat_domain::schema::column_label("town_year", &key)
                .map(str::to_string)
                .unwrap_or_else(|| header.clone());
            rows.push(vec![
                Value::Text(header),
                Value::Text(key),
                Value::Text(name),
                Value::Text(stored),
                Value::Text(definition),
                Value::Text(sources),
            ]);
        }
    }
    Sheet {
        name: "指标解释".into(),
        title: "指标解释".into(),
        grids: vec![Grid {
            id: "glossary".into(),
            title: "指标解释".into(),
            cols: vec![
                Col::new("header", "报表列名(含报表单位)", Fmt::Text),
                Col::new("column", "数据列名", Fmt::Text),
                Col::new("label", "中文名(含存储单位)", Fmt::Text),
                Col::new("stored_unit", "存储单位", Fmt::Text),
                Col::new("definition", "定义", Fmt::Text),
                Col::new("sources", "来源表", Fmt::Text),
            ],
            rows,
            row_ids: ids,
            total: false,
            note: Some(
                "金额在仓库中以元存储, 报表按各表标注折算为亿元或万元; 比率以小数存储, 报表以百分比显示。每个数字均可用 townstat sql --run 运行编号 从同名数据列重新得出。"
                    .into(),
            ),
            row_fmt: vec![],
        }],
        charts: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_glossary_parses_and_covers_the_mart_indicators() {
        for c in [
            "revenue",
            "entities_end",
            "above_size_count",
            "insured_avg",
            "patents_applied",
            "invention_granted",
            "financing_total",
            "revenue_yoy",
            "time_progress",
            "score",
            "percentile",
            "rd_intensity",
        ] {
            let e = entry(c).unwrap_or_else(|| panic!("no glossary entry for {c}"));
            assert!(!e.definition.is_empty(), "{c}");
        }
        assert_eq!(entry("revenue").map(|e| e.unit.as_str()), Some("元"));
    }
}
