-- town_membership — grain: one row per town, year and member entity.
-- Sources: int_group_member, stg_enterprise_year. Rules in int_group_member.sql.
SELECT gm.group_id AS town_id, gm.year, gm.uscc,
       ey.county_code, ey.industry_code, ey.entity_kind,
       CASE WHEN t.has_roster THEN 'roster' ELSE 'rule' END AS basis,
       '${run_id}' AS run_id
FROM int_group_member gm
JOIN town t ON t.town_id = gm.group_id
JOIN stg_enterprise_year ey ON ey.uscc = gm.uscc AND ey.year = gm.year
WHERE gm.group_type = 'town'
ORDER BY gm.group_id, gm.year, gm.uscc
