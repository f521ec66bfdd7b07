-- town_designation_year — grain: one row per registry town and mart year.
-- Sources: town, town_history, stg_year.
-- The registry as it stood at Y-12-31 (评定、晋级、动态调整): the town_history version
-- in force on Y-12-31 (valid_from ≤ Y-12-31 < valid_to). designated: that version's
-- status is `designated`; designation_status: `applied`, `designated`, `withdrawn`, or
-- null before the town's first event; designation_level: the level of that version
-- (for a withdrawn town the level it last held). A town without events has one version
-- from 1 January of its designated_year, so for it this is "designated_year ≤ Y" at its
-- registry level, as the registry alone always meant (a town without designated_year
-- is never designated). An upgrade counts from the year it takes effect; a town
-- withdrawn on any day of Y is not designated in Y. Every use of "designated in Y" —
-- city_year's town counts, the evaluation, town_cluster, the report — reads this table.
SELECT t.town_id, y.year,
       COALESCE(h.status = 'designated', false) AS designated,
       h.status AS designation_status,
       h.level AS designation_level,
       '${run_id}' AS run_id
FROM town t
CROSS JOIN stg_year y
LEFT JOIN town_history h
  ON h.town_id = t.town_id AND h.valid_from <= y.year_end
 AND (h.valid_to IS NULL OR h.valid_to > y.year_end)
ORDER BY t.town_id, y.year
