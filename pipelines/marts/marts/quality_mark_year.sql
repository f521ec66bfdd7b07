-- quality_mark_year — grain: one row per group (each town, each county, the city), mart
-- year, mark kind and level with at least one mark in force.
-- Sources: quality_mark, stg_year, town_membership, stg_enterprise_year.
-- The quality ledger (区域品牌, 集体商标/证明商标, 地理标志, 国家/行业/团体标准, 国际认证,
-- 公共服务平台/创新平台) per year: a mark is in force at Y-12-31 when granted_on ≤
-- Y-12-31 and expires_on is null or ≥ Y-12-31 (a mark expiring on 12-31 still counts;
-- a standard drafted has no expiry and counts every year after). marks: the ledger rows
-- in force held by the group's members (a member with two marks of one kind and level
-- counts two); holders: distinct members holding one. group_type `town` (group_id the
-- town_id; members as town_membership), `county` (group_id the county code; every
-- entity that existed in Y, by its county at Y-12-31), `city` (group_id 140200; every
-- entity that existed in Y). Groups, kinds and levels without a mark have no row.
WITH valid AS (
    SELECT q.uscc, y.year, q.kind, q.level
    FROM quality_mark q
    JOIN stg_year y ON q.granted_on <= y.year_end
                   AND (q.expires_on IS NULL OR q.expires_on >= y.year_end)
),
groups AS (
    SELECT 'town' AS group_type, m.town_id AS group_id, m.year, m.uscc
    FROM town_membership m
    UNION ALL
    SELECT 'county' AS group_type, e.county_code AS group_id, e.year, e.uscc
    FROM stg_enterprise_year e
    WHERE e.county_code IS NOT NULL
    UNION ALL
    SELECT 'city' AS group_type, '140200' AS group_id, e.year, e.uscc
    FROM stg_enterprise_year e
)
SELECT g.group_type, g.group_id, v.year, v.kind, v.level,
       CAST(COUNT(*) AS BIGINT) AS marks,
       CAST(COUNT(DISTINCT v.uscc) AS BIGINT) AS holders,
       '${run_id}' AS run_id
FROM valid v
JOIN groups g ON g.uscc = v.uscc AND g.year = v.year
GROUP BY g.group_type, g.group_id, v.year, v.kind, v.level
ORDER BY g.group_type, g.group_id, v.year, v.kind, v.level
