-- int_town_code — grain: one row per town and industry class its prefixes take.
-- Sources: town, industry_code.
-- A town's industry prefixes (towns.csv) matched against the industry_code table
-- (industry_matches: a section letter takes its whole section; a number every class
-- it begins). The one place the prefix rule is applied: int_town_member takes a rule
-- town's members by these codes within its county, int_town_industry_jobs the city's
-- entities by them for every town. Matching a few thousand codes here, instead of
-- every entity-year, is what keeps those steps a plain join on the code. Every
-- industry_code in the warehouse is in the table (ingest rejects others as
-- unknown_industry_code), so no entity is missed.
SELECT DISTINCT p.town_id, p.county_code, p.has_roster, i.code
FROM (SELECT town_id, county_code, has_roster, unnest(industry_codes) AS prefix
      FROM town) p
JOIN industry_code i ON industry_matches(i.code, p.prefix)
