-- int_town_member — grain: one row per town, year and member entity.
-- Sources: town, town_roster, int_town_code, stg_enterprise_year.
-- A town with a roster: the roster's entities that existed in Y. Otherwise: entities
-- that existed in Y in the town's county whose industry class falls under one of the
-- town's prefixes (industry_matches: a section letter matches its whole section).
-- An entity may belong to two towns; it then counts in both (see dq_town_overlap).
-- Each (town, year, entity) appears once: int_group_year sums per-entity figures over
-- these rows and relies on it (a roster listing an entity twice counts it once, an
-- entity matching two prefixes of one town counts once).
-- Counties and the city need no membership table: a county's members in Y are the
-- entities whose county as of Y-12-31 it is, the city's are every entity (see
-- int_group_year).
-- The member's attributes as of Y-12-31 come along for town_membership.
-- How the rule is applied: int_town_code holds the codes each town's prefixes take;
-- a rule town's entity-years join those on (county, code). An entity meets each town
-- once, so no DISTINCT over entity-years is needed.
SELECT t.town_id, ey.year, ey.uscc, ey.county_code, ey.industry_code, ey.entity_kind,
       'roster' AS basis
FROM town t
JOIN (SELECT DISTINCT town_id, uscc FROM town_roster) r ON r.town_id = t.town_id
JOIN stg_enterprise_year ey ON ey.uscc = r.uscc
WHERE t.has_roster
UNION ALL
SELECT rc.town_id, ey.year, ey.uscc, ey.county_code, ey.industry_code, ey.entity_kind,
       'rule' AS basis
FROM int_town_code rc
JOIN stg_enterprise_year ey ON ey.county_code = rc.county_code AND ey.industry_code = rc.code
WHERE NOT rc.has_roster
