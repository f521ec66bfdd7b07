-- town_year — grain: one row per registry town and mart year (designated or not).
-- Sources: int_group_year (town, county and city rows), town, int_town_industry_jobs.
-- county_revenue_share: the town's revenue over the revenue of every entity of its
-- county in Y. location_quotient: (E_t / E_county) / (E_industry / E_city), each an
-- insured_avg in Y; null when any part is zero or missing.
SELECT g.group_id AS town_id, g.year, t.county_code,
       g.entities_end, g.enterprises_end, g.entities_new, g.entities_exited,
       g.entities_growth, g.doubling_progress,
       g.revenue, g.gross_output, g.profit, g.tax, g.rd_expense, g.export_value,
       g.reported_employees, g.above_size_count, g.above_size_new, g.scale_tier,
       g.cr1, g.cr3, g.cr5, g.hhi, g.rd_intensity,
       CASE WHEN c.revenue IS NULL OR c.revenue = 0 THEN NULL
            ELSE CAST(g.revenue AS DOUBLE) / CAST(c.revenue AS DOUBLE) END AS county_revenue_share,
       g.srdi_count, g.little_giant_count, g.single_champion_count, g.high_tech_count,
       g.leading_count, g.rd_institution_count,
       g.insured_avg, g.wage_total, g.new_hires, g.separations, g.trained, g.avg_wage,
       CASE WHEN c.insured_avg IS NULL OR c.insured_avg = 0 OR city.insured_avg IS NULL
                 OR city.insured_avg = 0 OR ij.insured_avg IS NULL OR ij.insured_avg = 0
            THEN NULL
            ELSE (g.insured_avg / c.insured_avg) / (ij.insured_avg / city.insured_avg)
       END AS location_quotient,
       g.patents_applied, g.invention_applied, g.patents_granted, g.invention_granted,
       g.patents_granted_frac, g.invention_per_10k, g.patenting_enterprises,
       g.financing_total, g.loan_total, g.equity_total, g.guide_fund_total, g.bond_total,
       g.financed_enterprises, g.listed_enterprises,
       '${run_id}' AS run_id
FROM int_group_year g
JOIN town t ON g.group_type = 'town' AND t.town_id = g.group_id
LEFT JOIN int_group_year c ON c.group_type = 'county' AND c.group_id = t.county_code AND c.year = g.year
LEFT JOIN int_group_year city ON city.group_type = 'city' AND city.year = g.year
LEFT JOIN int_town_industry_jobs ij ON ij.town_id = t.town_id AND ij.year = g.year
ORDER BY g.group_id, g.year
