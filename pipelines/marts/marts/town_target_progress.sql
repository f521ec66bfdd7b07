-- town_target_progress — grain: one row per target and mart year up to its target year.
-- Sources: city_year, town_year, town; the targets of pipelines/targets.toml, one
-- SELECT each (the targets placeholder below); the registry tier targets (tier_target,
-- for targets.toml tier_target_year)
-- become `revenue >= threshold` targets of each town.
-- A target is `>=` (reach at least) or `<=` (stay at most, e.g. a concentration
-- cap). Each year's row is measured against that year's milestone when the target
-- has one ([target.milestones] in targets.toml), else against the final value.
-- progress: for `>=`, actual / target (null for a zero target); for `<=`,
-- target / actual (1 or more when met; null for a zero actual, which is met).
-- met: actual >= target, or actual <= target; false without an actual.
WITH t AS (
    ${targets}
    SELECT CONCAT('tier_', tw.town_id) AS target_id, tw.town_id AS scope, 'revenue' AS metric,
           '>=' AS comparison,
           CAST(CASE tw.tier_target WHEN '5亿级' THEN 500000000 WHEN '10亿级' THEN 1000000000
                    WHEN '20亿级' THEN 2000000000 WHEN '50亿级' THEN 5000000000
                    WHEN '100亿级' THEN 10000000000 WHEN '200亿级' THEN 20000000000 END AS DOUBLE) AS target,
           CAST(${tier_target_year} AS BIGINT) AS target_year, ty.year,
           CAST(ty.revenue AS DOUBLE) AS actual
    FROM town tw JOIN town_year ty ON ty.town_id = tw.town_id
    WHERE tw.tier_target IS NOT NULL AND ty.year <= ${tier_target_year}
)
SELECT target_id, scope, metric, comparison, target, target_year, year, actual,
       CASE WHEN actual IS NULL THEN NULL
            WHEN comparison = '<=' THEN CASE WHEN actual = 0 THEN NULL ELSE target / actual END
            WHEN target = 0 THEN NULL
            ELSE actual / target END AS progress,
       CASE WHEN actual IS NULL THEN false
            WHEN comparison = '<=' THEN actual <= target
            ELSE actual >= target END AS met,
       '${run_id}' AS run_id
FROM t
ORDER BY target_id, year
