-- int_above_size — grain: one row per annual return (uscc, year).
-- Sources: enterprise_annual, stg_enterprise_year, int_industry_rule.
-- Above designated size (规上, the contract's above_size): the return's own flag when it
-- has one; when the flag is null, true when the entity's industry (as of Y-12-31) falls
-- under a rule of scope `industry` (规模以上工业) of above_size_rule and its revenue
-- reaches that rule's revenue_min. With the compiled-in rules that is: section B, C or
-- D and revenue ≥ 20,000,000 元 (2000万元). A null revenue is not above size under the
-- derived rule. An explicit flag is taken as reported (the statistics office's own
-- classification). The other sectors' thresholds (限上批零住餐, 规上服务业) make the
-- 四上 count of int_size_class, not this flag.
SELECT a.uscc, a.year,
       CASE WHEN a.above_size IS NOT NULL THEN a.above_size
            ELSE COALESCE(r.above_scope = 'industry' AND a.revenue >= r.revenue_min, false)
       END AS above
FROM enterprise_annual a
LEFT JOIN stg_enterprise_year ey ON ey.uscc = a.uscc AND ey.year = a.year
LEFT JOIN int_industry_rule r ON r.code = ey.industry_code
