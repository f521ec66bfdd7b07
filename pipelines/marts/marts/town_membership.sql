-- town_membership — grain: one row per town, year and member entity.
-- Source: int_town_member (rules and attributes are defined there).
SELECT town_id, year, uscc, county_code, industry_code, entity_kind, basis,
       '${run_id}' AS run_id
FROM int_town_member
ORDER BY town_id, year, uscc
