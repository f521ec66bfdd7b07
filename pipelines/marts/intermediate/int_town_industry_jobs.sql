-- int_town_industry_jobs — grain: one row per town and year.
-- Sources: town, stg_enterprise_year, stg_employment_year.
-- E_industry of the location quotient: insured_avg of every entity of the city (any
-- kind, any county) whose industry class, as of Y-12-31, matches one of the town's
-- industry prefixes.
WITH prefix AS (
    SELECT town_id, unnest(industry_codes) AS prefix FROM town
),
matched AS (
    SELECT DISTINCT p.town_id, ey.year, ey.uscc
    FROM prefix p
    JOIN stg_enterprise_year ey ON industry_matches(ey.industry_code, p.prefix)
)
SELECT m.town_id, m.year, CAST(SUM(e.insured_sum) AS DOUBLE) / 12.0 AS insured_avg
FROM matched m
JOIN stg_employment_year e ON e.uscc = m.uscc AND e.year = m.year
GROUP BY m.town_id, m.year
