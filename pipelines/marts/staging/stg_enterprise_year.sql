-- stg_enterprise_year — grain: one row per entity and mart year in which it existed.
-- Sources: enterprise (dates), enterprise_history (attributes), industry_code (section).
-- "Existed in Y": established_on ≤ Y-12-31 and (deregistered_on null or ≥ Y-01-01),
-- that is year(established_on) ≤ Y ≤ year(deregistered_on).
-- Attributes (county, industry, kind) are those of the history version valid at
-- Y-12-31 (the latest valid_from ≤ Y-12-31); when the history starts after Y-12-31,
-- the earliest version (§1).
-- How: each version is in force on the 12-31 of the years from year(valid_from) (from
-- the first mart year for the earliest version) to the year before the next version's
-- valid_from. That span, cut to the years the entity existed and to the mart years,
-- is unnested into one row per year. No join against the years and no sort of
-- entity-years: the work grows linearly with the rows. A version whose successor
-- starts in the same year is in force on no 12-31 and yields no row.
WITH version_counts AS (
    SELECT uscc, COUNT(*) AS versions FROM enterprise_history GROUP BY uscc
),
versions AS (
    -- An entity with one version needs no window: it has no successor and is its own
    -- earliest version. Only entities with several versions are ordered (a window over
    -- every entity, one partition each, cost more than the rest of this step).
    SELECT h.uscc, h.entity_kind, h.division_code, h.industry_code, h.valid_from,
           CAST(NULL AS DATE) AS next_from, CAST(1 AS BIGINT) AS version_no
    FROM enterprise_history h
    JOIN version_counts c ON c.uscc = h.uscc AND c.versions = 1
    UNION ALL
    SELECT h.uscc, h.entity_kind, h.division_code, h.industry_code, h.valid_from,
           LEAD(h.valid_from) OVER (PARTITION BY h.uscc ORDER BY h.valid_from) AS next_from,
           CAST(ROW_NUMBER() OVER (PARTITION BY h.uscc ORDER BY h.valid_from) AS BIGINT) AS version_no
    FROM enterprise_history h
    JOIN version_counts c ON c.uscc = h.uscc AND c.versions > 1
),
spans AS (
    SELECT e.uscc, e.established_on, e.deregistered_on,
           v.entity_kind, v.division_code, v.industry_code,
           GREATEST(CAST(${first_year} AS BIGINT),
                    CAST(date_part('year', e.established_on) AS BIGINT),
                    CASE WHEN v.version_no = 1 THEN CAST(${first_year} AS BIGINT)
                         ELSE CAST(date_part('year', v.valid_from) AS BIGINT) END) AS year_from,
           LEAST(CAST(${run_year} AS BIGINT),
                 COALESCE(CAST(date_part('year', e.deregistered_on) AS BIGINT), CAST(${run_year} AS BIGINT)),
                 COALESCE(CAST(date_part('year', v.next_from) AS BIGINT) - 1, CAST(${run_year} AS BIGINT))) AS year_to
    FROM enterprise e
    JOIN versions v ON v.uscc = e.uscc
),
entity_years AS (
    SELECT uscc, established_on, deregistered_on, entity_kind, division_code, industry_code,
           unnest(range(year_from, year_to + 1)) AS year
    FROM spans
    WHERE year_from <= year_to
)
SELECT x.year,
       make_date(x.year, 1, 1) AS year_start,
       make_date(x.year, 12, 31) AS year_end,
       x.uscc, x.entity_kind, x.division_code AS county_code, x.industry_code, i.section,
       x.established_on, x.deregistered_on
FROM entity_years x
LEFT JOIN industry_code i ON i.code = x.industry_code
