-- city_year — grain: one row per year, the whole city (every entity that existed in Y).
-- Sources: int_group_year (city and town rows), town_designation_year.
-- Adds the programme counts, each over the towns designated in Y as the registry stood
-- at Y-12-31 (town_designation_year; for a registry without events: designated_year ≤ Y,
-- a town without designated_year is not designated): towns_total (any level),
-- towns_provincial and towns_city (the level held at Y-12-31), and towns_tier_N — the
-- designated towns whose revenue in Y reaches N亿 (their scale_tier is at least that
-- tier).
WITH towns AS (
    SELECT g.year,
           SUM(CASE WHEN s.designated THEN 1 ELSE 0 END) AS towns_total,
           SUM(CASE WHEN s.designated AND s.designation_level = 'provincial' THEN 1 ELSE 0 END) AS towns_provincial,
           SUM(CASE WHEN s.designated AND s.designation_level = 'city' THEN 1 ELSE 0 END) AS towns_city,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(500000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_5,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(1000000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_10,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(2000000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_20,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(5000000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_50,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(10000000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_100,
           SUM(CASE WHEN s.designated AND g.revenue >= CAST(20000000000 AS DECIMAL(20, 2)) THEN 1 ELSE 0 END) AS towns_tier_200
    FROM int_group_year g
    JOIN town_designation_year s ON g.group_type = 'town' AND s.town_id = g.group_id AND s.year = g.year
    GROUP BY g.year
)
SELECT g.year,
       g.entities_end, g.enterprises_end, g.entities_new, g.entities_exited,
       g.entities_growth, g.doubling_progress,
       g.revenue, g.gross_output, g.profit, g.tax, g.rd_expense, g.export_value,
       g.reported_employees, g.above_size_count, g.above_size_new, g.scale_tier,
       g.cr1, g.cr3, g.cr5, g.hhi, g.rd_intensity,
       g.srdi_count, g.little_giant_count, g.single_champion_count, g.high_tech_count,
       g.leading_count, g.rd_institution_count,
       g.insured_avg, g.wage_total, g.new_hires, g.separations, g.trained, g.avg_wage,
       g.patents_applied, g.invention_applied, g.patents_granted, g.invention_granted,
       g.patents_granted_frac, g.invention_per_10k, g.patenting_enterprises,
       g.financing_total, g.loan_total, g.equity_total, g.guide_fund_total, g.bond_total,
       g.financed_enterprises, g.listed_enterprises,
       CAST(COALESCE(t.towns_total, 0) AS BIGINT) AS towns_total,
       CAST(COALESCE(t.towns_provincial, 0) AS BIGINT) AS towns_provincial,
       CAST(COALESCE(t.towns_tier_5, 0) AS BIGINT) AS towns_tier_5,
       CAST(COALESCE(t.towns_tier_10, 0) AS BIGINT) AS towns_tier_10,
       CAST(COALESCE(t.towns_tier_20, 0) AS BIGINT) AS towns_tier_20,
       CAST(COALESCE(t.towns_tier_50, 0) AS BIGINT) AS towns_tier_50,
       CAST(COALESCE(t.towns_tier_100, 0) AS BIGINT) AS towns_tier_100,
       CAST(COALESCE(t.towns_tier_200, 0) AS BIGINT) AS towns_tier_200,
       CAST(COALESCE(t.towns_city, 0) AS BIGINT) AS towns_city,
       '${run_id}' AS run_id
FROM int_group_year g
LEFT JOIN towns t ON t.year = g.year
WHERE g.group_type = 'city'
ORDER BY g.year
