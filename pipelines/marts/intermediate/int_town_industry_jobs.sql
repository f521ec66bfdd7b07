-- int_town_industry_jobs — grain: one row per town and year.
-- Sources: int_town_code, stg_enterprise_year, stg_employment_year.
-- E_industry of the location quotient: insured_avg of every entity of the city (any
-- kind, any county) whose industry class, as of Y-12-31, matches one of the town's
-- industry prefixes (roster towns too: their prefixes still name their industry).
-- int_town_code lists each town's codes once, so each entity-year meets each town at
-- most once.
WITH matched AS (
    SELECT tc.town_id, ey.year, ey.uscc
    FROM int_town_code tc
    JOIN stg_enterprise_year ey ON ey.industry_code = tc.code
)
-- insured_sum is summed exactly as DECIMAL(38, 0) (a BIGINT SUM would wrap past 2^63;
-- see int_group_sums), then made DOUBLE as before.
SELECT m.town_id, m.year, CAST(SUM(CAST(e.insured_sum AS DECIMAL(38, 0))) AS DOUBLE) / 12.0 AS insured_avg
FROM matched m
JOIN stg_employment_year e ON e.uscc = m.uscc AND e.year = m.year
GROUP BY m.town_id, m.year
