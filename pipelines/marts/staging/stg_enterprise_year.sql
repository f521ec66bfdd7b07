-- stg_enterprise_year — grain: one row per entity and mart year in which it existed.
-- Sources: enterprise (dates), enterprise_history (attributes), industry_code (section).
-- "Existed in Y": established_on ≤ Y-12-31 and (deregistered_on null or ≥ Y-01-01).
-- Attributes (county, industry, kind) are those of the history version valid at
-- Y-12-31; when the history starts after Y-12-31, the earliest version (§1).
WITH existed AS (
    SELECT y.year, y.year_start, y.year_end, e.uscc, e.established_on, e.deregistered_on
    FROM stg_year y
    JOIN enterprise e
      ON e.established_on <= y.year_end
     AND (e.deregistered_on IS NULL OR e.deregistered_on >= y.year_start)
),
versions AS (
    SELECT x.year, x.year_start, x.year_end, x.uscc, x.established_on, x.deregistered_on,
           h.entity_kind, h.division_code, h.industry_code,
           ROW_NUMBER() OVER (
               PARTITION BY x.uscc, x.year
               ORDER BY CASE WHEN h.valid_from <= x.year_end THEN 0 ELSE 1 END,
                        CASE WHEN h.valid_from <= x.year_end THEN h.valid_from END DESC,
                        h.valid_from ASC
           ) AS rn
    FROM existed x
    JOIN enterprise_history h ON h.uscc = x.uscc
)
SELECT v.year, v.year_start, v.year_end, v.uscc, v.entity_kind,
       v.division_code AS county_code, v.industry_code, i.section,
       v.established_on, v.deregistered_on
FROM versions v
LEFT JOIN industry_code i ON i.code = v.industry_code
WHERE v.rn = 1
