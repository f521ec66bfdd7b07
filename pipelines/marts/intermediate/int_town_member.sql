-- int_group_member — grain: one row per group, year and member entity.
-- Sources: town, town_roster, stg_enterprise_year.
-- Groups are towns, counties and the city, so that town_year, county_year and
-- city_year share one definition of every indicator (indicators.md §3).
-- A town with a roster: the roster's entities that existed in Y. Otherwise: entities
-- that existed in Y in the town's county whose industry class falls under one of the
-- town's prefixes (industry_matches: a section letter matches its whole section).
-- An entity may belong to two towns; it then counts in both (see dq_town_overlap).
SELECT 'town' AS group_type, t.town_id AS group_id, ey.year, ey.uscc
FROM town t
JOIN town_roster r ON r.town_id = t.town_id
JOIN stg_enterprise_year ey ON ey.uscc = r.uscc
WHERE t.has_roster
UNION ALL
SELECT DISTINCT 'town' AS group_type, p.town_id AS group_id, ey.year, ey.uscc
FROM (SELECT town_id, county_code, unnest(industry_codes) AS prefix
      FROM town WHERE NOT has_roster) p
JOIN stg_enterprise_year ey
  ON ey.county_code = p.county_code
 AND industry_matches(ey.industry_code, p.prefix)
UNION ALL
SELECT 'county' AS group_type, county_code AS group_id, year, uscc
FROM stg_enterprise_year
WHERE county_code IS NOT NULL
UNION ALL
SELECT 'city' AS group_type, '140200' AS group_id, year, uscc
FROM stg_enterprise_year
