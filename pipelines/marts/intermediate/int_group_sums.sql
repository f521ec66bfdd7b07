-- int_group_sums — grain: one row per group (town, county, city) and mart year with
-- members.
-- Sources: int_town_member, int_entity_year.
-- The sums of every per-member figure of int_entity_year over each group's members
-- (indicators.md §2, §5a), for int_group_year. A step of its own so that the group
-- totals are a small table with exact statistics: int_group_year joins them to every
-- member's revenue for hhi, and DataFusion then builds its hash table from the totals
-- (an inline aggregate's row estimate is its input's, which made it build from the
-- members instead).
WITH member_facts AS (
    -- Each group's members in Y with their entity-year figures (int_entity_year). A
    -- town's members are those of int_town_member; a county's, the entities whose
    -- county as of Y-12-31 it is; the city's, every entity. Members are unique per
    -- group and year, so summing per-entity flags counts distinct members.
    SELECT 'town' AS group_type, tm.town_id AS group_id, f.*
    FROM int_town_member tm
    JOIN int_entity_year f ON f.uscc = tm.uscc AND f.year = tm.year
    UNION ALL
    SELECT 'county' AS group_type, f.county_code AS group_id, f.*
    FROM int_entity_year f
    WHERE f.county_code IS NOT NULL
    UNION ALL
    SELECT 'city' AS group_type, '140200' AS group_id, f.*
    FROM int_entity_year f
)
-- Σ over rows that have the value: revenue and rd_expense are null when no member has
-- a return with them (int_group_year's ratios need that null).
SELECT group_type, group_id, year,
       SUM(in_stock) AS entities_end, SUM(enterprise_in_stock) AS enterprises_end,
       SUM(is_new) AS entities_new, SUM(exited) AS entities_exited,
       SUM(revenue) AS revenue, SUM(gross_output) AS gross_output, SUM(profit) AS profit,
       SUM(tax) AS tax, SUM(rd_expense) AS rd_expense, SUM(export_value) AS export_value,
       SUM(employees) AS reported_employees,
       SUM(above) AS above_size_count, SUM(above_new) AS above_size_new,
       SUM(srdi) AS srdi_count, SUM(little_giant) AS little_giant_count,
       SUM(single_champion) AS single_champion_count, SUM(high_tech) AS high_tech_count,
       SUM(leading_enterprise) AS leading_count, SUM(rd_institution) AS rd_institution_count,
       SUM(insured_sum) AS insured_sum, SUM(wage_total) AS wage_total,
       SUM(new_hires) AS new_hires, SUM(separations) AS separations, SUM(trained) AS trained,
       SUM(financing_total) AS financing_total, SUM(loan_total) AS loan_total,
       SUM(equity_total) AS equity_total, SUM(guide_fund_total) AS guide_fund_total,
       SUM(bond_total) AS bond_total,
       SUM(financed) AS financed_enterprises, SUM(listed) AS listed_enterprises
FROM member_facts
GROUP BY group_type, group_id, year
