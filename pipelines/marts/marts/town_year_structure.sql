-- town_year_structure — grain: one row per town and mart year, as town_year.
-- Sources: town_year, town_membership, designation, town_member_year.
-- Growth and structure beyond 同比 (town_year_yoy):
-- * revenue_cagr_3y = (revenue(Y) / revenue(Y−3))^(1/3) − 1, the compound annual growth
--   rate over the last three years, from the two end years alone (a dip or a zero in
--   between does not enter it); null when Y−3 is not a mart year or either end is 0.
-- * productivity = revenue / insured_avg: 元 of revenue per insured employee; null when
--   insured_avg is 0.
-- * profit_margin = profit / revenue; null when revenue is 0.
-- * designated_national, designated_provincial, designated_city: members holding at
--   least one designation of that level valid in Y (year ≤ Y, expires_year null or
--   ≥ Y), of any kind; a member with designations of two levels counts at both.
-- * rd_institution_national, …_provincial, …_city: the same for the R&D institution
--   kinds (tech_center, engineering_center, key_lab), as rd_institution_count.
-- * four_above_count: members whose annual return for Y is in the 四上 statistics (规上
--   工业, 限上批零住餐, 规上服务业 … by the sector thresholds of above_size_rule:
--   int_size_class); above_size_count (town_year) is the contract's 规上 count, which
--   falls back on the industrial threshold only.
-- * size_large, size_medium, size_small, size_micro: members whose return for Y places
--   them 大型, 中型, 小型, 微型 (《统计上大中小微型企业划分办法（2017）》: int_size_class);
--   members without a return or whose class cannot be decided are in none.
-- Each of these five is Σ over the town's members in town_member_year (a declared test).
WITH levels AS (
    SELECT m.town_id, m.year,
           COUNT(DISTINCT CASE WHEN g.level = 'national' THEN m.uscc END) AS designated_national,
           COUNT(DISTINCT CASE WHEN g.level = 'provincial' THEN m.uscc END) AS designated_provincial,
           COUNT(DISTINCT CASE WHEN g.level = 'city' THEN m.uscc END) AS designated_city,
           COUNT(DISTINCT CASE WHEN g.level = 'national' AND g.kind IN ('tech_center', 'engineering_center', 'key_lab')
                               THEN m.uscc END) AS rd_institution_national,
           COUNT(DISTINCT CASE WHEN g.level = 'provincial' AND g.kind IN ('tech_center', 'engineering_center', 'key_lab')
                               THEN m.uscc END) AS rd_institution_provincial,
           COUNT(DISTINCT CASE WHEN g.level = 'city' AND g.kind IN ('tech_center', 'engineering_center', 'key_lab')
                               THEN m.uscc END) AS rd_institution_city
    FROM town_membership m
    JOIN designation g ON g.uscc = m.uscc AND g.year <= m.year
                      AND (g.expires_year IS NULL OR g.expires_year >= m.year)
    GROUP BY m.town_id, m.year
),
sizes AS (
    SELECT town_id, year,
           SUM(four_above_count) AS four_above_count,
           SUM(CASE WHEN size_class = '大型' THEN 1 ELSE 0 END) AS size_large,
           SUM(CASE WHEN size_class = '中型' THEN 1 ELSE 0 END) AS size_medium,
           SUM(CASE WHEN size_class = '小型' THEN 1 ELSE 0 END) AS size_small,
           SUM(CASE WHEN size_class = '微型' THEN 1 ELSE 0 END) AS size_micro
    FROM town_member_year
    GROUP BY town_id, year
)
SELECT ty.town_id, ty.year,
       CASE WHEN p.revenue IS NULL OR p.revenue <= 0 OR ty.revenue <= 0 THEN NULL
            ELSE power(CAST(ty.revenue AS DOUBLE) / CAST(p.revenue AS DOUBLE), 1.0 / 3.0) - 1.0
       END AS revenue_cagr_3y,
       CASE WHEN ty.insured_avg = 0 THEN NULL
            ELSE CAST(ty.revenue AS DOUBLE) / ty.insured_avg END AS productivity,
       CASE WHEN ty.revenue = 0 THEN NULL
            ELSE CAST(ty.profit AS DOUBLE) / CAST(ty.revenue AS DOUBLE) END AS profit_margin,
       CAST(COALESCE(l.designated_national, 0) AS BIGINT) AS designated_national,
       CAST(COALESCE(l.designated_provincial, 0) AS BIGINT) AS designated_provincial,
       CAST(COALESCE(l.designated_city, 0) AS BIGINT) AS designated_city,
       CAST(COALESCE(l.rd_institution_national, 0) AS BIGINT) AS rd_institution_national,
       CAST(COALESCE(l.rd_institution_provincial, 0) AS BIGINT) AS rd_institution_provincial,
       CAST(COALESCE(l.rd_institution_city, 0) AS BIGINT) AS rd_institution_city,
       CAST(COALESCE(z.four_above_count, 0) AS BIGINT) AS four_above_count,
       CAST(COALESCE(z.size_large, 0) AS BIGINT) AS size_large,
       CAST(COALESCE(z.size_medium, 0) AS BIGINT) AS size_medium,
       CAST(COALESCE(z.size_small, 0) AS BIGINT) AS size_small,
       CAST(COALESCE(z.size_micro, 0) AS BIGINT) AS size_micro,
       '${run_id}' AS run_id
FROM town_year ty
LEFT JOIN town_year p ON p.town_id = ty.town_id AND p.year = ty.year - 3
LEFT JOIN levels l ON l.town_id = ty.town_id AND l.year = ty.year
LEFT JOIN sizes z ON z.town_id = ty.town_id AND z.year = ty.year
ORDER BY ty.town_id, ty.year
