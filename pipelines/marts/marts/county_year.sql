-- county_year — grain: one row per county of Datong (division level county) and year.
-- Source: int_group_year. Every entity that existed in Y with its county as of
-- Y-12-31, without the industry rule; no location_quotient, no county_revenue_share.
SELECT g.group_id AS county_code, d.name AS county_name, g.year,
       g.entities_end, g.enterprises_end, g.entities_new, g.entities_exited,
       g.entities_growth, g.doubling_progress,
       g.revenue, g.gross_output, g.profit, g.tax, g.rd_expense, g.export_value,
       g.reported_employees, g.above_size_count, g.above_size_new, g.scale_tier,
       g.cr1, g.cr3, g.cr5, g.hhi, g.rd_intensity,
       g.srdi_count, g.little_giant_count, g.single_champion_count, g.high_tech_count,
       g.leading_count, g.rd_institution_count,
       g.insured_avg, g.wage_total, g.new_hires, g.separations, g.trained, g.avg_wage,
       g.patents_applied, g.invention_applied, g.patents_granted, g.invention_granted,
       g.patents_granted_frac, g.invention_per_10k, g.patenting_enterprises,
       g.financing_total, g.loan_total, g.equity_total, g.guide_fund_total, g.bond_total,
       g.financed_enterprises, g.listed_enterprises,
       '${run_id}' AS run_id
FROM int_group_year g
JOIN division d ON d.code = g.group_id
WHERE g.group_type = 'county'
ORDER BY g.group_id, g.year
