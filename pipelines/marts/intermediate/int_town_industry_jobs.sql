-- int_town_industry_jobs — grain: one row per town and year.
-- Sources: town, industry_code, stg_enterprise_year, stg_employment_year.
-- E_industry of the location quotient: insured_avg of every entity of the city (any
-- kind, any county) whose industry class, as of Y-12-31, matches one of the town's
-- industry prefixes.
-- The prefixes are matched against the industry_code table first (as in
-- int_town_member), so each entity-year meets each town at most once.
WITH town_codes AS (
    SELECT DISTINCT p.town_id, i.code
    FROM (SELECT town_id, unnest(industry_codes) AS prefix FROM town) p
    JOIN industry_code i ON industry_matches(i.code, p.prefix)
),
matched AS (
    SELECT tc.town_id, ey.year, ey.uscc
    FROM town_codes tc
    JOIN stg_enterprise_year ey ON ey.industry_code = tc.code
)
SELECT m.town_id, m.year, CAST(SUM(e.insured_sum) AS DOUBLE) / 12.0 AS insured_avg
FROM matched m
JOIN stg_employment_year e ON e.uscc = m.uscc AND e.year = m.year
GROUP BY m.town_id, m.year
