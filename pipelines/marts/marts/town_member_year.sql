-- town_member_year — grain: one row per town, mart year and member (as town_membership).
-- Sources: int_town_member, int_entity_year, int_size_class, enterprise.
-- The drill-down behind town_year: which enterprises make up a town's figures, why each
-- is a member (basis: `roster`, named by the town's roster, or `rule`, its county and
-- industry class match the town's), and what each contributes. Every figure column has
-- the name of the town_year column it feeds, and over a town's members in a year
--     Σ town_member_year.<column> = town_year.<column>
-- exactly for money and counts, and up to float rounding for insured_avg
-- (tests/slt/drilldown.slt proves it for every column, tests/run.sh on the sample):
-- * entities_end 1 when in the stock at Y-12-31 (deregistered on 12-31 has left it),
--   enterprises_end the same for entity_kind `enterprise`; entities_new 1 when
--   established in Y, entities_exited 1 when deregistered in Y.
-- * revenue … export_value, reported_employees: the member's annual return for Y, 0
--   without one (a town's sum counts a missing return as nothing). The money columns
--   are DECIMAL(20, 2) in the returns already; a zero of that type keeps COALESCE
--   from widening them to (22, 2), so the outer cast (which fixes the column's type)
--   has nothing to check: with a plain 0 it checked every value back down to (20, 2).
-- * above_size_count 1 when above designated size in Y, above_size_new 1 when also not
--   in Y-1.
-- * size_class: the member's 2017 size class in Y from its annual return (null without
--   a return or when it cannot be decided: int_size_class); four_above_count 1 when the
--   return is in the 四上 statistics (int_size_class), feeding
--   town_year_structure.four_above_count.
-- * srdi_count … rd_institution_count: 1 when the member holds a designation of that
--   kind valid in Y.
-- * insured_avg = the year's insured head counts / 12; wage_total, new_hires,
--   separations, trained: the year's employment returns, 0 without any.
-- * financing_total … bond_total: deals that occurred in Y; financed_enterprises 1 with
--   any deal in Y; listed_enterprises 1 when listed on or before Y-12-31.
-- Patents are not here: a patent counts once per town however many of the town's
-- members applied for it, so per-member counts would not add up; patent_applicant
-- names who applied. `name` is the current registered name (enterprise).
SELECT m.town_id, m.year, m.uscc, m.name, m.county_code, m.industry_code, m.entity_kind,
       m.basis,
       CAST(f.in_stock AS BIGINT) AS entities_end,
       CAST(f.enterprise_in_stock AS BIGINT) AS enterprises_end,
       CAST(f.is_new AS BIGINT) AS entities_new,
       CAST(f.exited AS BIGINT) AS entities_exited,
       CAST(COALESCE(f.revenue, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS revenue,
       CAST(COALESCE(f.gross_output, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS gross_output,
       CAST(COALESCE(f.profit, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS profit,
       CAST(COALESCE(f.tax, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS tax,
       CAST(COALESCE(f.rd_expense, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS rd_expense,
       CAST(COALESCE(f.export_value, CAST(0 AS DECIMAL(20, 2))) AS DECIMAL(20, 2)) AS export_value,
       CAST(COALESCE(f.employees, 0) AS BIGINT) AS reported_employees,
       CAST(f.above AS BIGINT) AS above_size_count,
       CAST(f.above_new AS BIGINT) AS above_size_new,
       m.size_class,
       CAST(CASE WHEN m.four_above THEN 1 ELSE 0 END AS BIGINT) AS four_above_count,
       CAST(f.srdi AS BIGINT) AS srdi_count,
       CAST(f.little_giant AS BIGINT) AS little_giant_count,
       CAST(f.single_champion AS BIGINT) AS single_champion_count,
       CAST(f.high_tech AS BIGINT) AS high_tech_count,
       CAST(f.leading_enterprise AS BIGINT) AS leading_count,
       CAST(f.rd_institution AS BIGINT) AS rd_institution_count,
       CAST(COALESCE(f.insured_sum, 0) AS DOUBLE) / 12.0 AS insured_avg,
       CAST(COALESCE(f.wage_total, 0) AS DECIMAL(20, 2)) AS wage_total,
       CAST(COALESCE(f.new_hires, 0) AS BIGINT) AS new_hires,
       CAST(COALESCE(f.separations, 0) AS BIGINT) AS separations,
       CAST(COALESCE(f.trained, 0) AS BIGINT) AS trained,
       CAST(COALESCE(f.financing_total, 0) AS DECIMAL(20, 2)) AS financing_total,
       CAST(COALESCE(f.loan_total, 0) AS DECIMAL(20, 2)) AS loan_total,
       CAST(COALESCE(f.equity_total, 0) AS DECIMAL(20, 2)) AS equity_total,
       CAST(COALESCE(f.guide_fund_total, 0) AS DECIMAL(20, 2)) AS guide_fund_total,
       CAST(COALESCE(f.bond_total, 0) AS DECIMAL(20, 2)) AS bond_total,
       CAST(f.financed AS BIGINT) AS financed_enterprises,
       CAST(f.listed AS BIGINT) AS listed_enterprises,
       '${run_id}' AS run_id
FROM (
    -- The members' narrow columns first (a size class, a name), then the wide year
    -- figures once: a hash join copies every column of the rows it outputs, and
    -- joined the other way round the 40 columns of each member-year were copied by
    -- every join after the first.
    SELECT m.town_id, m.year, m.uscc, m.county_code, m.industry_code, m.entity_kind,
           m.basis, sc.size_class, sc.four_above, e.name
    FROM int_town_member m
    LEFT JOIN int_size_class sc ON sc.uscc = m.uscc AND sc.year = m.year
    LEFT JOIN enterprise e ON e.uscc = m.uscc
) m
JOIN int_entity_year f ON f.uscc = m.uscc AND f.year = m.year
ORDER BY m.town_id, m.year, m.uscc
