-- town_evaluation_component — grain: one row per designated town, year and indicator
-- with a non-null value.
-- Sources: town_year, town_designation_year (a town is evaluated in the years it is
-- designated as the registry stood at Y-12-31), town_year_yoy, town_year_structure;
-- the components of pipelines/evaluation.toml, expanded into one SELECT per indicator
-- (the components placeholder below).
-- percentile = 100·(rank − 0.5)/N with rank 1 the worst (lowest value when higher is
-- better, highest when lower is better); tied values share their average rank.
WITH v AS (
    ${components}
),
r AS (
    SELECT v.*,
           RANK() OVER (PARTITION BY year, indicator
                        ORDER BY CASE WHEN higher_is_better THEN value ELSE -value END ASC) AS rank_min,
           COUNT(*) OVER (PARTITION BY year, indicator, value) AS ties,
           COUNT(*) OVER (PARTITION BY year, indicator) AS n
    FROM v
)
SELECT town_id, year, indicator, value,
       100.0 * ((CAST(rank_min AS DOUBLE) + (CAST(ties AS DOUBLE) - 1.0) / 2.0) - 0.5) / CAST(n AS DOUBLE) AS percentile,
       weight, higher_is_better,
       '${run_id}' AS run_id
FROM r
ORDER BY year, town_id, indicator
