-- town_year_yoy — grain: one row per town and mart year, as town_year.
-- 同比 (year-on-year change) of the yearly report's main indicators, so SQL users and
-- the report read the same figures: M_yoy = (M(Y) − M(Y−1)) / M(Y−1), a fraction (the
-- report shows it as a percentage). Null in the first mart year (no Y−1 row), and when
-- M(Y−1) is null or 0 (a growth from nothing has no ratio) or M(Y) is null.
-- Sources: town_year.
SELECT c.town_id, c.year,
       CASE WHEN p.revenue IS NULL OR p.revenue = 0 OR c.revenue IS NULL THEN NULL
            ELSE (CAST(c.revenue AS DOUBLE) - CAST(p.revenue AS DOUBLE)) / CAST(p.revenue AS DOUBLE) END AS revenue_yoy,
       CASE WHEN p.entities_end IS NULL OR p.entities_end = 0 OR c.entities_end IS NULL THEN NULL
            ELSE (CAST(c.entities_end AS DOUBLE) - CAST(p.entities_end AS DOUBLE)) / CAST(p.entities_end AS DOUBLE) END AS entities_end_yoy,
       CASE WHEN p.above_size_count IS NULL OR p.above_size_count = 0 OR c.above_size_count IS NULL THEN NULL
            ELSE (CAST(c.above_size_count AS DOUBLE) - CAST(p.above_size_count AS DOUBLE)) / CAST(p.above_size_count AS DOUBLE) END AS above_size_count_yoy,
       CASE WHEN p.insured_avg IS NULL OR p.insured_avg = 0 OR c.insured_avg IS NULL THEN NULL
            ELSE (CAST(c.insured_avg AS DOUBLE) - CAST(p.insured_avg AS DOUBLE)) / CAST(p.insured_avg AS DOUBLE) END AS insured_avg_yoy,
       CASE WHEN p.patents_applied IS NULL OR p.patents_applied = 0 OR c.patents_applied IS NULL THEN NULL
            ELSE (CAST(c.patents_applied AS DOUBLE) - CAST(p.patents_applied AS DOUBLE)) / CAST(p.patents_applied AS DOUBLE) END AS patents_applied_yoy,
       CASE WHEN p.patents_granted IS NULL OR p.patents_granted = 0 OR c.patents_granted IS NULL THEN NULL
            ELSE (CAST(c.patents_granted AS DOUBLE) - CAST(p.patents_granted AS DOUBLE)) / CAST(p.patents_granted AS DOUBLE) END AS patents_granted_yoy,
       CASE WHEN p.invention_granted IS NULL OR p.invention_granted = 0 OR c.invention_granted IS NULL THEN NULL
            ELSE (CAST(c.invention_granted AS DOUBLE) - CAST(p.invention_granted AS DOUBLE)) / CAST(p.invention_granted AS DOUBLE) END AS invention_granted_yoy,
       CASE WHEN p.financing_total IS NULL OR p.financing_total = 0 OR c.financing_total IS NULL THEN NULL
            ELSE (CAST(c.financing_total AS DOUBLE) - CAST(p.financing_total AS DOUBLE)) / CAST(p.financing_total AS DOUBLE) END AS financing_total_yoy,
       '${run_id}' AS run_id
FROM town_year c
LEFT JOIN town_year p ON p.town_id = c.town_id AND p.year = c.year - 1
ORDER BY c.town_id, c.year
