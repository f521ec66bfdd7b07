-- dq_town_overlap — grain: one row per entity and year that belongs to more than one
-- town. Source: town_membership. Such an entity counts in every town it belongs to
-- (indicators.md §1); this lists them for the leading group's office to review.
-- The entities in more than one town are found first with a plain count; only their
-- rows are then gathered into the sorted town list (an ordered array_agg over every
-- entity and year took 20 s of a 37 s mart build at scale 100).
WITH multi AS (
  SELECT year, uscc
  FROM town_membership
  GROUP BY year, uscc
  HAVING COUNT(*) > 1
)
SELECT m.year, m.uscc, array_to_string(array_agg(tm.town_id ORDER BY tm.town_id), ',') AS towns,
       CAST(COUNT(*) AS BIGINT) AS town_count, '${run_id}' AS run_id
FROM multi m
JOIN town_membership tm ON tm.year = m.year AND tm.uscc = m.uscc
GROUP BY m.year, m.uscc
ORDER BY m.year, m.uscc
