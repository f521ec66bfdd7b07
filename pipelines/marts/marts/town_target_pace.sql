-- town_target_pace — grain: one row per target and year, as town_target_progress.
-- 时间进度 (time progress) beside 完成进度, the comparison a progress report makes
-- ("完成率是否快于时间进度"). The plan period runs from the base year B (targets.toml
-- baseline_year, the plan's 2022) to each target's year T:
--   time_progress = (Y − B) / (T − B), clamped to [0, 1]; 1 when T ≤ B.
--   ahead = progress ≥ time_progress; null when progress is null.
-- So at the end of 2023 a 2025 target should be a third done, at the end of 2024 two
-- thirds. Sources: town_target_progress.
SELECT target_id, year, plan_start_year, target_year, time_progress, progress,
       CASE WHEN progress IS NULL THEN NULL ELSE progress >= time_progress END AS ahead,
       '${run_id}' AS run_id
FROM (
    SELECT target_id, year, CAST(${baseline_year} AS BIGINT) AS plan_start_year, target_year,
           CASE WHEN target_year <= ${baseline_year} THEN 1.0
                WHEN year <= ${baseline_year} THEN 0.0
                WHEN year >= target_year THEN 1.0
                ELSE CAST(year - ${baseline_year} AS DOUBLE)
                     / CAST(target_year - ${baseline_year} AS DOUBLE) END AS time_progress,
           progress
    FROM town_target_progress
) p
ORDER BY target_id, year
