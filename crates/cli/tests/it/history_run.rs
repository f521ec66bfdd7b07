//! A second registry snapshot that moves one enterprise to another county and
//! deregisters another: the history shows both changes, only the affected towns'
//! figures change, an enterprise absent from the full snapshot is flagged (not
//! deleted), and rerunning the same inputs changes no mart value.

use crate::fault::dataset;
use crate::support::{sql_csv, townstat};

const TOWN_YEAR: &str = "SELECT * EXCLUDE (run_id) FROM town_year ORDER BY town_id, year";

#[test]
fn history_tracks_moves_and_only_affected_towns_change() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let pipeline = dataset(&data);
    // The registry source is a full snapshot.
    let text = std::fs::read_to_string(&pipeline).expect("pipeline");
    std::fs::write(
        &pipeline,
        text.replacen(
            "glob = [\"enterprise.csv\"]",
            "glob = [\"enterprise.csv\"]\nfull_snapshot = true",
            1,
        ),
    )
    .expect("write");
    let p = pipeline.to_str().expect("utf-8");
    let wh = tmp.path().join("wh");
    assert_eq!(townstat(&wh, &["run", p, "--as-of", "2024-06-30"]).code, 0);
    let before = |town: &str| {
        sql_csv(
            &wh,
            &format!(
                "SELECT * EXCLUDE (run_id) FROM town_year WHERE town_id = '{town}' ORDER BY year"
            ),
        )
    };
    let (alpha, beta, gamma) = (before("alpha"), before("beta"), before("gamma"));
    let beta_before_2024 = sql_csv(
        &wh,
        "SELECT * EXCLUDE (run_id) FROM town_year WHERE town_id = 'beta' AND year < 2024 ORDER BY year",
    );

    // Day two: E4 (丁制药) moves to 140213; E5 (戊轨道) is deregistered; E6 is absent.
    let registry = std::fs::read_to_string(data.join("enterprise.csv")).expect("registry");
    let mut lines: Vec<String> = vec![];
    for line in registry.lines() {
        if line.contains("己黄花") {
            continue;
        }
        let line = if line.contains("丁制药") {
            line.replace(",140212", ",140213")
        } else if line.contains("戊轨道") {
            line.replace("2021-06-01,,", "2021-06-01,2024-05-01,")
        } else {
            line.to_string()
        };
        lines.push(line);
    }
    let mut text = lines.join("\n");
    text = text.replace("行政区划代码", "行政区划代码,登记状态");
    let text: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => l.to_string(),
            _ if l.contains("戊轨道") => format!("{l},注销"),
            _ => format!("{l},存续"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(data.join("enterprise.csv"), text + "\n").expect("write");
    let run = townstat(&wh, &["run", p, "--as-of", "2024-07-01"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let history = sql_csv(
        &wh,
        "SELECT h.uscc, h.division_code, h.status, h.valid_from, h.valid_to FROM enterprise_history h \
         JOIN enterprise e ON e.uscc = h.uscc WHERE e.name IN ('丁制药有限公司', '戊轨道有限公司') \
         ORDER BY h.uscc, h.valid_from",
    );
    assert_eq!(
        history,
        "uscc,division_code,status,valid_from,valid_to\n\
         91140212MA0C000040,140212,,2024-06-30,2024-07-01\n\
         91140212MA0C000040,140213,active,2024-07-01,\n\
         91140213MA0C00005H,140213,,2024-06-30,2024-07-01\n\
         91140213MA0C00005H,140213,deregistered,2024-07-01,\n"
    );
    // Every other enterprise changed status (blank → 存续) too, so it has two versions;
    // E6, absent from the snapshot, keeps its one version and is flagged, not deleted.
    assert_eq!(
        sql_csv(&wh, "SELECT uscc, absent_on FROM enterprise_absent"),
        "uscc,absent_on\n91140215MA0C00006H,2024-07-01\n"
    );
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM enterprise"),
        "n\n6\n"
    );

    // Only the towns the changes touch move: beta in 2024 (E4 left its county at
    // 2024-07-01, before the 2024 year end); alpha and gamma not at all.
    let after = |town: &str| {
        sql_csv(
            &wh,
            &format!(
                "SELECT * EXCLUDE (run_id) FROM town_year WHERE town_id = '{town}' ORDER BY year"
            ),
        )
    };
    assert_eq!(after("alpha"), alpha);
    assert_eq!(after("gamma"), gamma);
    assert_ne!(after("beta"), beta);
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT * EXCLUDE (run_id) FROM town_year WHERE town_id = 'beta' AND year < 2024 ORDER BY year",
        ),
        beta_before_2024
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT entities_end FROM town_year WHERE town_id = 'beta' AND year = 2024"
        ),
        "entities_end\n1\n"
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT county_code, entities_end FROM county_year WHERE year = 2024 AND county_code IN ('140212', '140213') ORDER BY 1"
        ),
        "county_code,entities_end\n140212,1\n140213,1\n"
    );

    // Rerunning the same inputs (forced) changes no value of any mart.
    let marts = [
        TOWN_YEAR,
        "SELECT * EXCLUDE (run_id) FROM county_year ORDER BY county_code, year",
        "SELECT * EXCLUDE (run_id) FROM city_year ORDER BY year",
        "SELECT * EXCLUDE (run_id) FROM town_evaluation ORDER BY town_id, year",
        "SELECT * EXCLUDE (run_id) FROM town_evaluation_component ORDER BY town_id, year, indicator",
        "SELECT * EXCLUDE (run_id) FROM town_target_progress ORDER BY target_id, year",
        "SELECT * EXCLUDE (run_id) FROM town_membership ORDER BY town_id, year, uscc",
    ];
    let first: Vec<String> = marts.iter().map(|q| sql_csv(&wh, q)).collect();
    let again = townstat(&wh, &["run", p, "--as-of", "2024-07-01", "--force"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let second: Vec<String> = marts.iter().map(|q| sql_csv(&wh, q)).collect();
    assert_eq!(first, second);
    // No duplicate key in any table, by the keys the schemas declare.
    let mut keyed: Vec<(String, Vec<String>)> = townstat_domain::schema::catalog()
        .iter()
        .map(|t| (t.name.clone(), t.key.clone()))
        .collect();
    keyed.extend(
        townstat_domain::schema::derived_labels()
            .tables
            .iter()
            .map(|(n, t)| (n.clone(), t.key.clone())),
    );
    for (table, key) in keyed {
        let key = key.join(", ");
        let q = format!(
            "SELECT count(*) AS n FROM (SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1)"
        );
        assert_eq!(sql_csv(&wh, &q), "n\n0\n", "duplicate keys in {table}");
    }
}
