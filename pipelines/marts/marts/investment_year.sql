-- investment_year — grain: one row per group (each town, each county, the city) and
-- mart year in which the group signed at least one investment deal (招商引资签约).
-- Sources: investment_deal, town, stg_year.
-- A deal belongs to the year of its signed_on and to its target: `town` (the deal's
-- town), `county` (its county, or its town's county), `city` (140200, every deal).
-- funds_in_place is the deal's funds in place to date as its latest row states it (a
-- later file's row of a deal replaces the earlier one), counted in the signing year
-- (资金到位 of the deals signed in Y). Origin (origin_code, the investor's region):
-- outside the province = not 14…; outside the city = not 1402… .
-- outside_province_share = funds in place from outside the province ÷ all funds in
-- place (null when no funds are in place).
WITH deals AS (
    SELECT d.deal_id, d.signed_on, d.town_id,
           COALESCE(d.county_code, t.county_code) AS county_code,
           d.contracted_amount, d.funds_in_place,
           substr(d.origin_code, 1, 2) <> '14' AS outside_province,
           substr(d.origin_code, 1, 4) <> '1402' AS outside_city
    FROM investment_deal d
    LEFT JOIN town t ON t.town_id = d.town_id
),
groups AS (
    SELECT 'town' AS group_type, town_id AS group_id, deals.* FROM deals
    WHERE town_id IS NOT NULL
    UNION ALL
    SELECT 'county' AS group_type, county_code AS group_id, deals.* FROM deals
    WHERE county_code IS NOT NULL
    UNION ALL
    SELECT 'city' AS group_type, '140200' AS group_id, deals.* FROM deals
),
sums AS (
    SELECT g.group_type, g.group_id, y.year,
           CAST(COUNT(*) AS BIGINT) AS deals_signed,
           CAST(SUM(CASE WHEN g.outside_province THEN 1 ELSE 0 END) AS BIGINT)
               AS deals_outside_province,
           CAST(SUM(CASE WHEN g.outside_city THEN 1 ELSE 0 END) AS BIGINT)
               AS deals_outside_city,
           SUM(g.contracted_amount) AS contracted_amount,
           SUM(COALESCE(g.funds_in_place, 0)) AS funds_in_place,
           SUM(CASE WHEN g.outside_province THEN COALESCE(g.funds_in_place, 0) ELSE 0 END)
               AS funds_outside_province
    FROM groups g
    JOIN stg_year y ON g.signed_on BETWEEN y.year_start AND y.year_end
    GROUP BY g.group_type, g.group_id, y.year
)
SELECT group_type, group_id, year, deals_signed, deals_outside_province,
       deals_outside_city, contracted_amount, funds_in_place, funds_outside_province,
       CASE WHEN funds_in_place = 0 THEN NULL
            ELSE CAST(funds_outside_province AS DOUBLE) / CAST(funds_in_place AS DOUBLE)
       END AS outside_province_share,
       CASE WHEN contracted_amount = 0 THEN NULL
            ELSE CAST(funds_in_place AS DOUBLE) / CAST(contracted_amount AS DOUBLE)
       END AS funds_in_place_rate,
       '${run_id}' AS run_id
FROM sums
ORDER BY group_type, group_id, year
