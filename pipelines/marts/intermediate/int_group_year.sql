-- int_group_year — grain: one row per group (town, county, city) and mart year.
-- Sources: int_group_sums, int_town_member, int_entity_year, stg_year, town, division,
-- patent, patent_applicant.
-- Every indicator shared by town_year, county_year and city_year, defined once
-- (indicators.md §2, §5a). Sums and counts of nothing are 0; ratios with a zero or null
-- denominator are null; money is Decimal(20,2), counts Int64, ratios Float64.
WITH grid AS (
    SELECT 'town' AS group_type, t.town_id AS group_id, y.year
    FROM town t CROSS JOIN stg_year y
    UNION ALL
    SELECT 'county', d.code, y.year
    FROM division d CROSS JOIN stg_year y WHERE d.level = 'county'
    UNION ALL
    SELECT 'city', '140200', y.year FROM stg_year y
),
members AS (
    -- Each group's members in Y (as in int_group_sums): for the patent indicators.
    SELECT 'town' AS group_type, town_id AS group_id, year, uscc FROM int_town_member
    UNION ALL
    SELECT 'county', county_code, year, uscc FROM int_entity_year WHERE county_code IS NOT NULL
    UNION ALL
    SELECT 'city', '140200', year, uscc FROM int_entity_year
),
member_revenues AS (
    -- Members with a revenue (the same memberships as int_group_sums); null revenues
    -- take no part in cr_k or hhi.
    SELECT 'town' AS group_type, tm.town_id AS group_id, f.year, f.revenue
    FROM int_town_member tm
    JOIN int_entity_year f ON f.uscc = tm.uscc AND f.year = tm.year
    WHERE f.revenue IS NOT NULL
    UNION ALL
    SELECT 'county', county_code, year, revenue FROM int_entity_year
    WHERE county_code IS NOT NULL AND revenue IS NOT NULL
    UNION ALL
    SELECT 'city', '140200', year, revenue FROM int_entity_year WHERE revenue IS NOT NULL
),
concentration AS (
    -- top_k_sum(revenue, k): the sum of the k largest revenues (a townstat function).
    -- hhi: each member's squared share of the group's revenue (a DOUBLE, the same
    -- wherever it is computed) rounded to 12 decimals, summed exactly in DECIMAL and
    -- only then made DOUBLE: a DOUBLE sum depends on the order rows arrive in, which
    -- differs between a local build and a cluster.
    SELECT f.group_type, f.group_id, f.year,
           CAST(top_k_sum(f.revenue, 1) AS DOUBLE) AS top1,
           CAST(top_k_sum(f.revenue, 3) AS DOUBLE) AS top3,
           CAST(top_k_sum(f.revenue, 5) AS DOUBLE) AS top5,
           CAST(SUM(CASE WHEN CAST(s.revenue AS DOUBLE) > 0
                         THEN CAST((100.0 * CAST(f.revenue AS DOUBLE) / CAST(s.revenue AS DOUBLE))
                                 * (100.0 * CAST(f.revenue AS DOUBLE) / CAST(s.revenue AS DOUBLE))
                                   AS DECIMAL(38, 12))
                    END) AS DOUBLE) AS hhi
    FROM int_group_sums s
    JOIN member_revenues f ON f.group_type = s.group_type AND f.group_id = s.group_id AND f.year = s.year
    GROUP BY f.group_type, f.group_id, f.year
),
applied AS (
    -- A patent is the group's when at least one linked applicant is a member in the
    -- application year; each patent counts once.
    SELECT m.group_type, m.group_id, m.year,
           COUNT(DISTINCT p.application_no) AS patents_applied,
           COUNT(DISTINCT CASE WHEN p.patent_type = 'invention' THEN p.application_no END) AS invention_applied,
           COUNT(DISTINCT m.uscc) AS patenting_enterprises
    FROM patent p
    JOIN patent_applicant pa ON pa.application_no = p.application_no
    JOIN members m ON m.uscc = pa.uscc AND m.year = CAST(date_part('year', p.applied_on) AS BIGINT)
    GROUP BY m.group_type, m.group_id, m.year
),
granted_patents AS (
    -- Per patent granted in Y: how many applicant positions are members in Y.
    SELECT m.group_type, m.group_id, m.year, p.application_no, p.patent_type,
           p.applicant_count, COUNT(*) AS member_positions
    FROM patent p
    JOIN patent_applicant pa ON pa.application_no = p.application_no
    JOIN members m ON m.uscc = pa.uscc AND m.year = CAST(date_part('year', p.granted_on) AS BIGINT)
    GROUP BY m.group_type, m.group_id, m.year, p.application_no, p.patent_type, p.applicant_count
),
granted AS (
    -- patents_granted_frac counts applicant positions, linked or not, in the denominator.
    -- Each patent's share is rounded to 15 decimals and summed as a DECIMAL: decimal
    -- addition is exact, so the sum does not depend on the order rows arrive in (a
    -- DOUBLE sum did: 3.833333333333333 on a two-executor cluster against
    -- 3.8333333333333335 locally). The result is the double nearest the exact sum.
    SELECT group_type, group_id, year,
           COUNT(*) AS patents_granted,
           SUM(CASE WHEN patent_type = 'invention' THEN 1 ELSE 0 END) AS invention_granted,
           CAST(SUM(CAST(CAST(member_positions AS DOUBLE) / CAST(applicant_count AS DOUBLE)
                         AS DECIMAL(38, 15))) AS DOUBLE) AS patents_granted_frac
    FROM granted_patents
    GROUP BY group_type, group_id, year
),
joined AS (
    SELECT g.group_type, g.group_id, g.year,
           CAST(COALESCE(s.entities_end, 0) AS BIGINT) AS entities_end,
           CAST(COALESCE(s.enterprises_end, 0) AS BIGINT) AS enterprises_end,
           CAST(COALESCE(s.entities_new, 0) AS BIGINT) AS entities_new,
           CAST(COALESCE(s.entities_exited, 0) AS BIGINT) AS entities_exited,
           CAST(COALESCE(s.revenue, 0) AS DECIMAL(20, 2)) AS revenue,
           CAST(COALESCE(s.gross_output, 0) AS DECIMAL(20, 2)) AS gross_output,
           CAST(COALESCE(s.profit, 0) AS DECIMAL(20, 2)) AS profit,
           CAST(COALESCE(s.tax, 0) AS DECIMAL(20, 2)) AS tax,
           CAST(COALESCE(s.rd_expense, 0) AS DECIMAL(20, 2)) AS rd_expense,
           CAST(COALESCE(s.export_value, 0) AS DECIMAL(20, 2)) AS export_value,
           CAST(COALESCE(s.reported_employees, 0) AS BIGINT) AS reported_employees,
           CAST(COALESCE(s.above_size_count, 0) AS BIGINT) AS above_size_count,
           CAST(COALESCE(s.above_size_new, 0) AS BIGINT) AS above_size_new,
           -- Σ over rows that have the value; null when there is no revenue to divide by.
           s.rd_expense AS rd_expense_raw, s.revenue AS revenue_raw,
           c.top1, c.top3, c.top5, c.hhi,
           CAST(COALESCE(s.srdi_count, 0) AS BIGINT) AS srdi_count,
           CAST(COALESCE(s.little_giant_count, 0) AS BIGINT) AS little_giant_count,
           CAST(COALESCE(s.single_champion_count, 0) AS BIGINT) AS single_champion_count,
           CAST(COALESCE(s.high_tech_count, 0) AS BIGINT) AS high_tech_count,
           CAST(COALESCE(s.leading_count, 0) AS BIGINT) AS leading_count,
           CAST(COALESCE(s.rd_institution_count, 0) AS BIGINT) AS rd_institution_count,
           CAST(COALESCE(s.insured_sum, 0) AS DOUBLE) / 12.0 AS insured_avg,
           CAST(COALESCE(s.wage_total, 0) AS DECIMAL(20, 2)) AS wage_total,
           CAST(COALESCE(s.new_hires, 0) AS BIGINT) AS new_hires,
           CAST(COALESCE(s.separations, 0) AS BIGINT) AS separations,
           CAST(COALESCE(s.trained, 0) AS BIGINT) AS trained,
           CAST(COALESCE(ap.patents_applied, 0) AS BIGINT) AS patents_applied,
           CAST(COALESCE(ap.invention_applied, 0) AS BIGINT) AS invention_applied,
           CAST(COALESCE(gr.patents_granted, 0) AS BIGINT) AS patents_granted,
           CAST(COALESCE(gr.invention_granted, 0) AS BIGINT) AS invention_granted,
           CAST(COALESCE(gr.patents_granted_frac, 0) AS DOUBLE) AS patents_granted_frac,
           CAST(COALESCE(ap.patenting_enterprises, 0) AS BIGINT) AS patenting_enterprises,
           CAST(COALESCE(s.financing_total, 0) AS DECIMAL(20, 2)) AS financing_total,
           CAST(COALESCE(s.loan_total, 0) AS DECIMAL(20, 2)) AS loan_total,
           CAST(COALESCE(s.equity_total, 0) AS DECIMAL(20, 2)) AS equity_total,
           CAST(COALESCE(s.guide_fund_total, 0) AS DECIMAL(20, 2)) AS guide_fund_total,
           CAST(COALESCE(s.bond_total, 0) AS DECIMAL(20, 2)) AS bond_total,
           CAST(COALESCE(s.financed_enterprises, 0) AS BIGINT) AS financed_enterprises,
           CAST(COALESCE(s.listed_enterprises, 0) AS BIGINT) AS listed_enterprises
    FROM grid g
    LEFT JOIN int_group_sums s ON s.group_type = g.group_type AND s.group_id = g.group_id AND s.year = g.year
    LEFT JOIN concentration c ON c.group_type = g.group_type AND c.group_id = g.group_id AND c.year = g.year
    LEFT JOIN applied ap ON ap.group_type = g.group_type AND ap.group_id = g.group_id AND ap.year = g.year
    LEFT JOIN granted gr ON gr.group_type = g.group_type AND gr.group_id = g.group_id AND gr.year = g.year
),
with_history AS (
    SELECT j.*,
           LAG(entities_end) OVER (PARTITION BY group_type, group_id ORDER BY year) AS entities_end_prev,
           MAX(CASE WHEN year = ${baseline_year} THEN entities_end END)
               OVER (PARTITION BY group_type, group_id) AS entities_end_baseline
    FROM joined j
)
SELECT group_type, group_id, year,
       entities_end, enterprises_end, entities_new, entities_exited,
       -- Null in the first mart year and when the previous stock is 0.
       CASE WHEN year = ${first_year} OR entities_end_prev IS NULL OR entities_end_prev = 0 THEN NULL
            ELSE CAST(entities_end AS DOUBLE) / CAST(entities_end_prev AS DOUBLE) - 1.0 END AS entities_growth,
       -- Baseline year B from targets.toml; null for Y < B.
       CASE WHEN year < ${baseline_year} OR entities_end_baseline IS NULL OR entities_end_baseline = 0 THEN NULL
            ELSE CAST(entities_end AS DOUBLE) / (2.0 * CAST(entities_end_baseline AS DOUBLE)) END AS doubling_progress,
       revenue, gross_output, profit, tax, rd_expense, export_value, reported_employees,
       above_size_count, above_size_new,
       scale_tier(revenue) AS scale_tier,
       CASE WHEN revenue_raw IS NULL OR revenue_raw = 0 THEN NULL ELSE top1 / CAST(revenue_raw AS DOUBLE) END AS cr1,
       CASE WHEN revenue_raw IS NULL OR revenue_raw = 0 THEN NULL ELSE top3 / CAST(revenue_raw AS DOUBLE) END AS cr3,
       CASE WHEN revenue_raw IS NULL OR revenue_raw = 0 THEN NULL ELSE top5 / CAST(revenue_raw AS DOUBLE) END AS cr5,
       hhi,
       -- Σ rd_expense / Σ revenue, each over the rows that have it (a sum of nothing is 0).
       CASE WHEN revenue_raw IS NULL OR revenue_raw = 0 THEN NULL
            ELSE CAST(COALESCE(rd_expense_raw, 0) AS DOUBLE) / CAST(revenue_raw AS DOUBLE) END AS rd_intensity,
       srdi_count, little_giant_count, single_champion_count, high_tech_count, leading_count,
       rd_institution_count,
       insured_avg, wage_total, new_hires, separations, trained,
       CASE WHEN insured_avg = 0 THEN NULL ELSE CAST(wage_total AS DOUBLE) / insured_avg END AS avg_wage,
       patents_applied, invention_applied, patents_granted, invention_granted,
       patents_granted_frac,
       CASE WHEN insured_avg = 0 THEN NULL ELSE CAST(invention_granted AS DOUBLE) / (insured_avg / 10000.0) END AS invention_per_10k,
       patenting_enterprises,
       financing_total, loan_total, equity_total, guide_fund_total, bond_total,
       financed_enterprises, listed_enterprises
FROM with_history
