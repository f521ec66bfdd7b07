-- town_evaluation — grain: one row per designated town and year with at least one
-- evaluated indicator.
-- Source: town_evaluation_component.
-- score = Σ weight·percentile / Σ weight over the indicators the town has; rank orders
-- towns by score, best first; scores are compared rounded to 9 decimals so that
-- floating-point noise cannot split a tie, and tied towns share the better rank.
WITH s AS (
    SELECT town_id, year, SUM(weight * percentile) / SUM(weight) AS score
    FROM town_evaluation_component
    GROUP BY town_id, year
)
SELECT town_id, year, score,
       CAST(RANK() OVER (PARTITION BY year ORDER BY round(score, 9) DESC) AS BIGINT) AS rank,
       '${run_id}' AS run_id
FROM s
ORDER BY year, rank, town_id
