-- int_entity_year — grain: one row per entity and mart year in which it existed (the
-- rows of stg_enterprise_year).
-- Sources: stg_enterprise_year, enterprise_annual, int_above_size, designation,
-- stg_employment_year, financing.
-- Everything int_group_year sums over a group's members, worked out once per entity
-- and year, so that the groups (an entity is in its town, its county and the city)
-- need one pass over their members instead of one join per source. Each column keeps
-- the meaning of the group indicator it feeds (indicators.md §2, §5a):
-- * in_stock: in the stock at Y-12-31 (deregistered on 12-31 has left it);
--   is_new: established in Y; exited: deregistered in Y.
-- * revenue … employees: the entity's annual return for Y, null without one;
--   above / above_new: above designated size in Y (and not in Y-1), 0 without a return.
-- * srdi … rd_institution: 1 when the entity holds a designation of that kind valid in
--   Y (year ≤ Y, expires_year null or ≥ Y), any level; several count once.
-- * insured_sum … trained: the year's employment returns summed, null without any.
-- * financing_total … bond_total: deals that occurred in Y, per instrument (null when
--   none of that instrument); financed: 1 when any deal occurred in Y.
-- * listed: 1 when a listing occurred on or before Y-12-31.
-- How: the entity-years meet each yearly source (returns with their above-size flags,
-- designations, employment, deals, listings) in a chain of joins keyed by entity and
-- year. The sources are written on the left of RIGHT JOINs: DataFusion builds its
-- hash table from a join's left input, so the entity-years (the large side) stream
-- through every join instead of being held in memory once per join. (Stacking the
-- sources and merging them with one GROUP BY was tried: at scale 100 the merge's
-- 1.6 M groups spilled and took longer than the joins.)
WITH annual AS (
    SELECT a.uscc, a.year, a.revenue, a.gross_output, a.profit, a.tax, a.rd_expense,
           a.export_value, a.employees, s.above, COALESCE(p.above, false) AS above_last_year
    FROM enterprise_annual a
    JOIN int_above_size s ON s.uscc = a.uscc AND s.year = a.year
    LEFT JOIN int_above_size p ON p.uscc = a.uscc AND p.year = a.year - 1
),
designation_years AS (
    -- Each designation over the mart years it is valid in.
    SELECT uscc, kind,
           unnest(range(GREATEST(CAST(year AS BIGINT), CAST(${first_year} AS BIGINT)),
                        LEAST(COALESCE(CAST(expires_year AS BIGINT), CAST(${run_year} AS BIGINT)),
                              CAST(${run_year} AS BIGINT)) + 1)) AS year
    FROM designation
),
designated AS (
    SELECT uscc, year,
           MAX(CASE WHEN kind = 'srdi' THEN 1 ELSE 0 END) AS srdi,
           MAX(CASE WHEN kind = 'little_giant' THEN 1 ELSE 0 END) AS little_giant,
           MAX(CASE WHEN kind = 'single_champion' THEN 1 ELSE 0 END) AS single_champion,
           MAX(CASE WHEN kind = 'high_tech' THEN 1 ELSE 0 END) AS high_tech,
           MAX(CASE WHEN kind = 'leading' THEN 1 ELSE 0 END) AS leading_enterprise,
           MAX(CASE WHEN kind IN ('tech_center', 'engineering_center', 'key_lab') THEN 1 ELSE 0 END) AS rd_institution
    FROM designation_years
    GROUP BY uscc, year
),
deals AS (
    -- "Occurred in Y": Y-01-01 ≤ occurred_on ≤ Y-12-31.
    SELECT uscc, CAST(date_part('year', occurred_on) AS BIGINT) AS year,
           SUM(amount) AS financing_total,
           SUM(CASE WHEN instrument = 'bank_loan' THEN amount END) AS loan_total,
           SUM(CASE WHEN instrument = 'equity' THEN amount END) AS equity_total,
           SUM(CASE WHEN instrument = 'guide_fund' THEN amount END) AS guide_fund_total,
           SUM(CASE WHEN instrument = 'bond' THEN amount END) AS bond_total
    FROM financing
    WHERE occurred_on IS NOT NULL
    GROUP BY uscc, CAST(date_part('year', occurred_on) AS BIGINT)
),
listings AS (
    SELECT uscc, MIN(occurred_on) AS first_listed_on
    FROM financing
    WHERE instrument = 'listing'
    GROUP BY uscc
)
SELECT ey.uscc, ey.year, ey.county_code,
       CASE WHEN ey.deregistered_on IS NULL OR ey.deregistered_on > ey.year_end THEN 1 ELSE 0 END AS in_stock,
       CASE WHEN (ey.deregistered_on IS NULL OR ey.deregistered_on > ey.year_end)
                 AND ey.entity_kind = 'enterprise' THEN 1 ELSE 0 END AS enterprise_in_stock,
       CASE WHEN ey.established_on >= ey.year_start THEN 1 ELSE 0 END AS is_new,
       CASE WHEN ey.deregistered_on >= ey.year_start AND ey.deregistered_on <= ey.year_end THEN 1 ELSE 0 END AS exited,
       a.revenue, a.gross_output, a.profit, a.tax, a.rd_expense, a.export_value, a.employees,
       CASE WHEN a.above THEN 1 ELSE 0 END AS above,
       CASE WHEN a.above AND NOT a.above_last_year THEN 1 ELSE 0 END AS above_new,
       COALESCE(d.srdi, 0) AS srdi,
       COALESCE(d.little_giant, 0) AS little_giant,
       COALESCE(d.single_champion, 0) AS single_champion,
       COALESCE(d.high_tech, 0) AS high_tech,
       COALESCE(d.leading_enterprise, 0) AS leading_enterprise,
       COALESCE(d.rd_institution, 0) AS rd_institution,
       e.insured_sum, e.wage_total, e.new_hires, e.separations, e.trained,
       f.financing_total, f.loan_total, f.equity_total, f.guide_fund_total, f.bond_total,
       CASE WHEN f.uscc IS NOT NULL THEN 1 ELSE 0 END AS financed,
       CASE WHEN l.first_listed_on <= ey.year_end THEN 1 ELSE 0 END AS listed
FROM listings l
RIGHT JOIN (
    deals f
    RIGHT JOIN (
        stg_employment_year e
        RIGHT JOIN (
            designated d
            RIGHT JOIN (
                annual a
                RIGHT JOIN stg_enterprise_year ey ON a.uscc = ey.uscc AND a.year = ey.year
            ) ON d.uscc = ey.uscc AND d.year = ey.year
        ) ON e.uscc = ey.uscc AND e.year = ey.year
    ) ON f.uscc = ey.uscc AND f.year = ey.year
) ON l.uscc = ey.uscc
