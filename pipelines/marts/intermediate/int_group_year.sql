-- int_group_year — grain: one row per group (town, county, city) and mart year.
-- Sources: int_group_member, stg_enterprise_year, stg_year, enterprise_annual,
-- int_above_size, designation, stg_employment_year, patent, patent_applicant, financing.
-- Every indicator shared by town_year, county_year and city_year, defined once
-- (indicators.md §2, §5a). Sums and counts of nothing are 0; ratios with a zero or null
-- denominator are null; money is Decimal(20,2), counts Int64, ratios Float64.
WITH grid AS (
    SELECT 'town' AS group_type, t.town_id AS group_id, y.year, y.year_start, y.year_end
    FROM town t CROSS JOIN stg_year y
    UNION ALL
    SELECT 'county', d.code, y.year, y.year_start, y.year_end
    FROM division d CROSS JOIN stg_year y WHERE d.level = 'county'
    UNION ALL
    SELECT 'city', '140200', y.year, y.year_start, y.year_end FROM stg_year y
),
m AS (
    SELECT gm.group_type, gm.group_id, gm.year, gm.uscc,
           ey.entity_kind, ey.established_on, ey.deregistered_on, ey.year_start, ey.year_end
    FROM int_group_member gm
    JOIN stg_enterprise_year ey ON ey.uscc = gm.uscc AND ey.year = gm.year
),
entities AS (
    -- entities_end: in the stock at Y-12-31 (deregistered on 12-31 has left it);
    -- entities_new: established in Y; entities_exited: deregistered in Y.
    SELECT group_type, group_id, year,
           SUM(CASE WHEN deregistered_on IS NULL OR deregistered_on > year_end THEN 1 ELSE 0 END) AS entities_end,
           SUM(CASE WHEN (deregistered_on IS NULL OR deregistered_on > year_end)
                     AND entity_kind = 'enterprise' THEN 1 ELSE 0 END) AS enterprises_end,
           SUM(CASE WHEN established_on >= year_start THEN 1 ELSE 0 END) AS entities_new,
           SUM(CASE WHEN deregistered_on >= year_start AND deregistered_on <= year_end THEN 1 ELSE 0 END) AS entities_exited
    FROM m
    GROUP BY group_type, group_id, year
),
annual_rows AS (
    SELECT m.group_type, m.group_id, m.year, m.uscc, a.revenue, a.gross_output, a.profit,
           a.tax, a.rd_expense, a.export_value, a.employees, s.above,
           COALESCE(p.above, false) AS above_last_year
    FROM m
    JOIN enterprise_annual a ON a.uscc = m.uscc AND a.year = m.year
    JOIN int_above_size s ON s.uscc = a.uscc AND s.year = a.year
    LEFT JOIN int_above_size p ON p.uscc = a.uscc AND p.year = a.year - 1
),
annual AS (
    SELECT group_type, group_id, year,
           SUM(revenue) AS revenue, SUM(gross_output) AS gross_output, SUM(profit) AS profit,
           SUM(tax) AS tax, SUM(rd_expense) AS rd_expense, SUM(export_value) AS export_value,
           SUM(employees) AS reported_employees,
           SUM(CASE WHEN above THEN 1 ELSE 0 END) AS above_size_count,
           SUM(CASE WHEN above AND NOT above_last_year THEN 1 ELSE 0 END) AS above_size_new
    FROM annual_rows
    GROUP BY group_type, group_id, year
),
ranked AS (
    -- Null revenues take no part in cr_k or hhi.
    -- Sums are taken in DECIMAL, where addition is exact, and only then made DOUBLE:
    -- a DOUBLE sum depends on the order rows arrive in, which differs between a local
    -- build and a cluster (the last bits of a figure must not depend on the engine).
    SELECT group_type, group_id, year, revenue AS rev, CAST(revenue AS DOUBLE) AS r,
           CAST(SUM(revenue) OVER (PARTITION BY group_type, group_id, year) AS DOUBLE) AS total,
           ROW_NUMBER() OVER (PARTITION BY group_type, group_id, year ORDER BY revenue DESC, uscc) AS rk
    FROM annual_rows
    WHERE revenue IS NOT NULL
),
concentration AS (
    -- hhi: each member's squared share (a DOUBLE, the same wherever it is computed)
    -- rounded to 12 decimals, summed exactly.
    SELECT group_type, group_id, year,
           CAST(SUM(CASE WHEN rk <= 1 THEN rev ELSE 0 END) AS DOUBLE) AS top1,
           CAST(SUM(CASE WHEN rk <= 3 THEN rev ELSE 0 END) AS DOUBLE) AS top3,
           CAST(SUM(CASE WHEN rk <= 5 THEN rev ELSE 0 END) AS DOUBLE) AS top5,
           CAST(SUM(CASE WHEN total > 0
                         THEN CAST((100.0 * r / total) * (100.0 * r / total) AS DECIMAL(38, 12))
                    END) AS DOUBLE) AS hhi
    FROM ranked
    GROUP BY group_type, group_id, year
),
designations AS (
    -- Distinct members holding a designation valid in Y (year ≤ Y, expires_year null
    -- or ≥ Y), any level.
    SELECT m.group_type, m.group_id, m.year,
           COUNT(DISTINCT CASE WHEN d.kind = 'srdi' THEN m.uscc END) AS srdi_count,
           COUNT(DISTINCT CASE WHEN d.kind = 'little_giant' THEN m.uscc END) AS little_giant_count,
           COUNT(DISTINCT CASE WHEN d.kind = 'single_champion' THEN m.uscc END) AS single_champion_count,
           COUNT(DISTINCT CASE WHEN d.kind = 'high_tech' THEN m.uscc END) AS high_tech_count,
           COUNT(DISTINCT CASE WHEN d.kind = 'leading' THEN m.uscc END) AS leading_count,
           COUNT(DISTINCT CASE WHEN d.kind IN ('tech_center', 'engineering_center', 'key_lab')
                               THEN m.uscc END) AS rd_institution_count
    FROM m
    JOIN designation d
      ON d.uscc = m.uscc AND d.year <= m.year
     AND (d.expires_year IS NULL OR d.expires_year >= m.year)
    GROUP BY m.group_type, m.group_id, m.year
),
jobs AS (
    -- The 12 monthly returns of Y; a month with no return counts as 0 in insured_avg.
    SELECT m.group_type, m.group_id, m.year,
           SUM(e.insured_sum) AS insured_sum, SUM(e.wage_total) AS wage_total,
           SUM(e.new_hires) AS new_hires, SUM(e.separations) AS separations,
           SUM(e.trained) AS trained
    FROM m
    JOIN stg_employment_year e ON e.uscc = m.uscc AND e.year = m.year
    GROUP BY m.group_type, m.group_id, m.year
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
    JOIN m ON m.uscc = pa.uscc AND m.year = CAST(date_part('year', p.applied_on) AS BIGINT)
    GROUP BY m.group_type, m.group_id, m.year
),
granted_patents AS (
    -- Per patent granted in Y: how many applicant positions are members in Y.
    SELECT m.group_type, m.group_id, m.year, p.application_no, p.patent_type,
           p.applicant_count, COUNT(*) AS member_positions
    FROM patent p
    JOIN patent_applicant pa ON pa.application_no = p.application_no
    JOIN m ON m.uscc = pa.uscc AND m.year = CAST(date_part('year', p.granted_on) AS BIGINT)
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
deals AS (
    -- financing_total sums every instrument (leases, guarantees, listings included).
    SELECT m.group_type, m.group_id, m.year,
           SUM(f.amount) AS financing_total,
           SUM(CASE WHEN f.instrument = 'bank_loan' THEN f.amount END) AS loan_total,
           SUM(CASE WHEN f.instrument = 'equity' THEN f.amount END) AS equity_total,
           SUM(CASE WHEN f.instrument = 'guide_fund' THEN f.amount END) AS guide_fund_total,
           SUM(CASE WHEN f.instrument = 'bond' THEN f.amount END) AS bond_total,
           COUNT(DISTINCT m.uscc) AS financed_enterprises
    FROM m
    JOIN financing f ON f.uscc = m.uscc AND f.occurred_on >= m.year_start AND f.occurred_on <= m.year_end
    GROUP BY m.group_type, m.group_id, m.year
),
listed AS (
    -- Each member once, however many listings, on or before Y-12-31.
    SELECT m.group_type, m.group_id, m.year, COUNT(DISTINCT m.uscc) AS listed_enterprises
    FROM m
    JOIN financing f ON f.uscc = m.uscc AND f.instrument = 'listing' AND f.occurred_on <= m.year_end
    GROUP BY m.group_type, m.group_id, m.year
),
joined AS (
    SELECT g.group_type, g.group_id, g.year,
           CAST(COALESCE(e.entities_end, 0) AS BIGINT) AS entities_end,
           CAST(COALESCE(e.enterprises_end, 0) AS BIGINT) AS enterprises_end,
           CAST(COALESCE(e.entities_new, 0) AS BIGINT) AS entities_new,
           CAST(COALESCE(e.entities_exited, 0) AS BIGINT) AS entities_exited,
           CAST(COALESCE(a.revenue, 0) AS DECIMAL(20, 2)) AS revenue,
           CAST(COALESCE(a.gross_output, 0) AS DECIMAL(20, 2)) AS gross_output,
           CAST(COALESCE(a.profit, 0) AS DECIMAL(20, 2)) AS profit,
           CAST(COALESCE(a.tax, 0) AS DECIMAL(20, 2)) AS tax,
           CAST(COALESCE(a.rd_expense, 0) AS DECIMAL(20, 2)) AS rd_expense,
           CAST(COALESCE(a.export_value, 0) AS DECIMAL(20, 2)) AS export_value,
           CAST(COALESCE(a.reported_employees, 0) AS BIGINT) AS reported_employees,
           CAST(COALESCE(a.above_size_count, 0) AS BIGINT) AS above_size_count,
           CAST(COALESCE(a.above_size_new, 0) AS BIGINT) AS above_size_new,
           -- Σ over rows that have the value; null when there is no revenue to divide by.
           a.rd_expense AS rd_expense_raw, a.revenue AS revenue_raw,
           c.top1, c.top3, c.top5, c.hhi,
           CAST(COALESCE(d.srdi_count, 0) AS BIGINT) AS srdi_count,
           CAST(COALESCE(d.little_giant_count, 0) AS BIGINT) AS little_giant_count,
           CAST(COALESCE(d.single_champion_count, 0) AS BIGINT) AS single_champion_count,
           CAST(COALESCE(d.high_tech_count, 0) AS BIGINT) AS high_tech_count,
           CAST(COALESCE(d.leading_count, 0) AS BIGINT) AS leading_count,
           CAST(COALESCE(d.rd_institution_count, 0) AS BIGINT) AS rd_institution_count,
           CAST(COALESCE(j.insured_sum, 0) AS DOUBLE) / 12.0 AS insured_avg,
           CAST(COALESCE(j.wage_total, 0) AS DECIMAL(20, 2)) AS wage_total,
           CAST(COALESCE(j.new_hires, 0) AS BIGINT) AS new_hires,
           CAST(COALESCE(j.separations, 0) AS BIGINT) AS separations,
           CAST(COALESCE(j.trained, 0) AS BIGINT) AS trained,
           CAST(COALESCE(ap.patents_applied, 0) AS BIGINT) AS patents_applied,
           CAST(COALESCE(ap.invention_applied, 0) AS BIGINT) AS invention_applied,
           CAST(COALESCE(gr.patents_granted, 0) AS BIGINT) AS patents_granted,
           CAST(COALESCE(gr.invention_granted, 0) AS BIGINT) AS invention_granted,
           CAST(COALESCE(gr.patents_granted_frac, 0) AS DOUBLE) AS patents_granted_frac,
           CAST(COALESCE(ap.patenting_enterprises, 0) AS BIGINT) AS patenting_enterprises,
           CAST(COALESCE(f.financing_total, 0) AS DECIMAL(20, 2)) AS financing_total,
           CAST(COALESCE(f.loan_total, 0) AS DECIMAL(20, 2)) AS loan_total,
           CAST(COALESCE(f.equity_total, 0) AS DECIMAL(20, 2)) AS equity_total,
           CAST(COALESCE(f.guide_fund_total, 0) AS DECIMAL(20, 2)) AS guide_fund_total,
           CAST(COALESCE(f.bond_total, 0) AS DECIMAL(20, 2)) AS bond_total,
           CAST(COALESCE(f.financed_enterprises, 0) AS BIGINT) AS financed_enterprises,
           CAST(COALESCE(l.listed_enterprises, 0) AS BIGINT) AS listed_enterprises
    FROM grid g
    LEFT JOIN entities e ON e.group_type = g.group_type AND e.group_id = g.group_id AND e.year = g.year
    LEFT JOIN annual a ON a.group_type = g.group_type AND a.group_id = g.group_id AND a.year = g.year
    LEFT JOIN concentration c ON c.group_type = g.group_type AND c.group_id = g.group_id AND c.year = g.year
    LEFT JOIN designations d ON d.group_type = g.group_type AND d.group_id = g.group_id AND d.year = g.year
    LEFT JOIN jobs j ON j.group_type = g.group_type AND j.group_id = g.group_id AND j.year = g.year
    LEFT JOIN applied ap ON ap.group_type = g.group_type AND ap.group_id = g.group_id AND ap.year = g.year
    LEFT JOIN granted gr ON gr.group_type = g.group_type AND gr.group_id = g.group_id AND gr.year = g.year
    LEFT JOIN deals f ON f.group_type = g.group_type AND f.group_id = g.group_id AND f.year = g.year
    LEFT JOIN listed l ON l.group_type = g.group_type AND l.group_id = g.group_id AND l.year = g.year
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
