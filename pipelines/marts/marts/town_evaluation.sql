-- town_evaluation — grain: one row per designated town and year with at least one
-- evaluated indicator.
-- Source: town_evaluation_component.
-- score = Σ weight·percentile / Σ weight over the indicators the town has; rank orders
-- towns by score, best first; scores are compared rounded to 9 decimals so that
-- floating-point noise cannot split a tie, and tied towns share the better rank.
-- Both sums are taken in DECIMAL (each term rounded to 15 decimals), where addition is
-- exact: a DOUBLE sum depends on the order the rows arrive in, which a cluster changes.
-- grade: the first grade of evaluation.toml (best first) whose min_score the score
-- (rounded to 9 decimals) reaches; the last grade takes the rest; null without grades.
-- review_flag (the plan's 动态调整): the town holds review_grade (不合格) this year and
-- in each of the review_years − 1 years before, every one of them evaluated (a year
-- not designated breaks the run); false without a review grade.
WITH s AS (
    SELECT town_id, year,
           CAST(SUM(CAST(weight * percentile AS DECIMAL(38, 15))) AS DOUBLE)
             / CAST(SUM(CAST(weight AS DECIMAL(38, 15))) AS DOUBLE) AS score
    FROM town_evaluation_component
    GROUP BY town_id, year
),
ranked AS (
    SELECT town_id, year, score,
           CAST(RANK() OVER (PARTITION BY year ORDER BY round(score, 9) DESC) AS BIGINT) AS rank,
           ${grade} AS grade
    FROM s
)
SELECT town_id, year, score, rank, grade,
       ${review_flag} AS review_flag,
       '${run_id}' AS run_id
FROM ranked
ORDER BY year, rank, town_id
