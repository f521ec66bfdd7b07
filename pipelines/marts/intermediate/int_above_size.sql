-- int_above_size — grain: one row per annual return (uscc, year).
-- Sources: enterprise_annual, stg_enterprise_year.
-- Above designated size (规上): the return's own flag when it has one; when the flag
-- is null, true when the entity's section (as of Y-12-31) is B, C or D and revenue ≥
-- 20,000,000 元. A null revenue is not above size under the derived rule. An explicit
-- flag is taken as reported (the statistics office's own classification).
SELECT a.uscc, a.year,
       CASE WHEN a.above_size IS NOT NULL THEN a.above_size
            ELSE COALESCE(ey.section IN ('B', 'C', 'D')
                          AND a.revenue >= CAST(20000000 AS DECIMAL(20, 2)), false)
       END AS above
FROM enterprise_annual a
LEFT JOIN stg_enterprise_year ey ON ey.uscc = a.uscc AND ey.year = a.year
