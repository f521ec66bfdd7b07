-- town_year_structure — grain: one row per town and mart year, as town_year.
-- Sources: town_year, town_membership, designation.
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
       '${run_id}' AS run_id
FROM town_year ty
LEFT JOIN town_year p ON p.town_id = ty.town_id AND p.year = ty.year - 3
LEFT JOIN levels l ON l.town_id = ty.town_id AND l.year = ty.year
ORDER BY ty.town_id, ty.year
