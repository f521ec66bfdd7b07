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
    -- county as of Y-12-31 it is. Members are unique per group and year, so summing
    -- per-entity flags counts distinct members. The entities without a county are
    -- summed too, as a group of their own that is not output: the city's members are
    -- every entity, so its sums are the sums of these county groups (below).
    SELECT 'town' AS group_type, tm.town_id AS group_id, f.*
    FROM int_town_member tm
    JOIN int_entity_year f ON f.uscc = tm.uscc AND f.year = tm.year
    UNION ALL
    SELECT 'county' AS group_type, f.county_code AS group_id, f.*
    FROM int_entity_year f
),
-- Σ over rows that have the value: revenue and rd_expense are null when no member has
-- a return with them (int_group_year's ratios need that null).
-- Head counts (employees, insured, hires, separations, trainees) are summed exactly as
-- DECIMAL(38, 0) and cast back to BIGINT, so that a sum past 2^63 fails the run ("too
-- large") instead of wrapping to a negative reported_employees as a BIGINT SUM does.
-- With ingestion's bound of ±10,000,000 per count (±1.2·10^8 per entity-year for the
-- monthly ones) a wrap would need over 7·10^10 members in one group; the guard is for
-- rows loaded before the bound. The 0/1 flags sum to at most the member count. Money
-- sums are Decimal128(30,2) or wider, and int_group_year's CAST to DECIMAL(20,2)
-- fails, never wraps, past 10^18 元.
sums AS (
    SELECT group_type, group_id, year,
           SUM(in_stock) AS entities_end, SUM(enterprise_in_stock) AS enterprises_end,
           SUM(is_new) AS entities_new, SUM(exited) AS entities_exited,
           SUM(revenue) AS revenue, SUM(gross_output) AS gross_output, SUM(profit) AS profit,
           SUM(tax) AS tax, SUM(rd_expense) AS rd_expense, SUM(export_value) AS export_value,
           CAST(SUM(CAST(employees AS DECIMAL(38, 0))) AS BIGINT) AS reported_employees,
           SUM(above) AS above_size_count, SUM(above_new) AS above_size_new,
           SUM(srdi) AS srdi_count, SUM(little_giant) AS little_giant_count,
           SUM(single_champion) AS single_champion_count, SUM(high_tech) AS high_tech_count,
           SUM(leading_enterprise) AS leading_count, SUM(rd_institution) AS rd_institution_count,
           CAST(SUM(CAST(insured_sum AS DECIMAL(38, 0))) AS BIGINT) AS insured_sum,
           SUM(wage_total) AS wage_total,
           CAST(SUM(CAST(new_hires AS DECIMAL(38, 0))) AS BIGINT) AS new_hires,
           CAST(SUM(CAST(separations AS DECIMAL(38, 0))) AS BIGINT) AS separations,
           CAST(SUM(CAST(trained AS DECIMAL(38, 0))) AS BIGINT) AS trained,
           SUM(financing_total) AS financing_total, SUM(loan_total) AS loan_total,
           SUM(equity_total) AS equity_total, SUM(guide_fund_total) AS guide_fund_total,
           SUM(bond_total) AS bond_total,
           SUM(financed) AS financed_enterprises, SUM(listed) AS listed_enterprises
    FROM member_facts
    GROUP BY group_type, group_id, year
)
SELECT * FROM sums WHERE group_type = 'town' OR group_id IS NOT NULL
UNION ALL
-- The city: the sums of its counties and of the entities without one, which are every
-- entity once. Integer and decimal addition is exact, so this is the sum over the
-- entities itself, null where every part is null (no member has the value). The money
-- sums of the city are Decimal128(38,2), and the union makes the others so too; the
-- head counts are summed as DECIMAL(38, 0) again. One pass over int_entity_year for
-- both the counties and the city instead of one each: at scale 100 its 2.53 M rows.
SELECT 'city' AS group_type, '140200' AS group_id, year,
       SUM(entities_end), SUM(enterprises_end), SUM(entities_new), SUM(entities_exited),
       SUM(revenue), SUM(gross_output), SUM(profit), SUM(tax), SUM(rd_expense),
       SUM(export_value),
       CAST(SUM(CAST(reported_employees AS DECIMAL(38, 0))) AS BIGINT),
       SUM(above_size_count), SUM(above_size_new),
       SUM(srdi_count), SUM(little_giant_count), SUM(single_champion_count),
       SUM(high_tech_count), SUM(leading_count), SUM(rd_institution_count),
       CAST(SUM(CAST(insured_sum AS DECIMAL(38, 0))) AS BIGINT),
       SUM(wage_total),
       CAST(SUM(CAST(new_hires AS DECIMAL(38, 0))) AS BIGINT),
       CAST(SUM(CAST(separations AS DECIMAL(38, 0))) AS BIGINT),
       CAST(SUM(CAST(trained AS DECIMAL(38, 0))) AS BIGINT),
       SUM(financing_total), SUM(loan_total), SUM(equity_total), SUM(guide_fund_total),
       SUM(bond_total), SUM(financed_enterprises), SUM(listed_enterprises)
FROM sums
WHERE group_type = 'county'
GROUP BY year
