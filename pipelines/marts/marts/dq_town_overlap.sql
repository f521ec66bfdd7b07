-- dq_town_overlap — grain: one row per entity and year that belongs to more than one
-- town. Source: town_membership. Such an entity counts in every town it belongs to
-- (indicators.md §1); this lists them for the leading group's office to review.
SELECT year, uscc, array_to_string(array_agg(town_id ORDER BY town_id), ',') AS towns,
       CAST(COUNT(*) AS BIGINT) AS town_count, '${run_id}' AS run_id
FROM town_membership
GROUP BY year, uscc
HAVING COUNT(*) > 1
ORDER BY year, uscc
