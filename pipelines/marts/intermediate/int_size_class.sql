-- int_size_class — grain: one row per annual return (uscc, year).
-- Sources: enterprise_annual, stg_enterprise_year, int_industry_rule, size_class_rule.
-- four_above (四上企业: 规上工业, 有资质的建筑业, 限上批零住餐, 房地产开发经营业, 规上服务业):
-- the return's own above_size flag when it has one (taken as reported, for every
-- sector); when it is null, true when the industry (as of Y-12-31) has a 四上 rule with
-- a revenue threshold and the revenue reaches it (industry 2000万, wholesale 2000万,
-- retail 500万, accommodation and catering 200万, services 2000/1000/500万 by sector:
-- above_size_rule). Categories decided by qualification (construction, real estate
-- development) and industries outside the 四上 statistics are false without a flag;
-- a null revenue is not above. above_category names the 四上 category of the industry
-- (null outside them), whatever the revenue.
-- size_class (《统计上大中小微型企业划分办法（2017）》): the sector of the industry's
-- longest matching prefix in size_class_rule gives one band per indicator and class.
-- A class is met when every indicator of the sector reaches the class's lower bound;
-- the return takes the largest class met (大型, 中型, 小型), else 微型 ("大型、中型和
-- 小型企业须同时满足所列指标的下限，否则下划一档；微型企业只须满足所列指标中的一项").
-- Indicators: employees = the return's employees (人); revenue = revenue in 万元 (元 /
-- 10,000, so a revenue of exactly 500万元 meets a lower bound of 500); assets (资产
-- 总额) is not collected by townstat's sources. An indicator without a value cannot be
-- compared: when the largest class not failed (no indicator below its lower bound) has
-- an unknown indicator, size_class is null — the firm could be that class or smaller.
-- So 建筑业, 房地产开发经营 and 租赁和商务服务业 (which need assets) are classed only when
-- another indicator already places them lower (微型 or the class it allows), and an
-- industry with no sector (J finance, S, T) or an entity without a known industry has
-- a null size_class.
WITH returns AS (
    SELECT a.uscc, a.year, a.revenue, a.employees, a.above_size,
           ey.industry_code, r.above_scope, r.above_category, r.revenue_min,
           r.size_sector, r.size_prefix
    FROM enterprise_annual a
    LEFT JOIN stg_enterprise_year ey ON ey.uscc = a.uscc AND ey.year = a.year
    LEFT JOIN int_industry_rule r ON r.code = ey.industry_code
),
checks AS (
    SELECT x.uscc, x.year, b.class, b.class_order,
           CASE b.indicator
               WHEN 'employees' THEN CAST(x.employees AS DECIMAL(38, 2)) >= CAST(b.lower AS DECIMAL(38, 2))
               WHEN 'revenue' THEN CAST(x.revenue AS DECIMAL(38, 2)) >= CAST(b.lower AS DECIMAL(38, 2)) * 10000
               ELSE CAST(NULL AS BOOLEAN)
           END AS meets
    FROM returns x
    JOIN size_class_rule b ON b.sector = x.size_sector AND b.industry_prefix = x.size_prefix
                          AND b.class_order > 1
),
per_class AS (
    -- state: 0 an indicator is below the lower bound, 1 none below but one unknown,
    -- 2 every indicator reaches it.
    SELECT uscc, year, class, class_order,
           CASE WHEN SUM(CASE WHEN meets = false THEN 1 ELSE 0 END) > 0 THEN 0
                WHEN SUM(CASE WHEN meets IS NULL THEN 1 ELSE 0 END) > 0 THEN 1
                ELSE 2 END AS state
    FROM checks
    GROUP BY uscc, year, class, class_order
),
top AS (
    SELECT uscc, year, MAX(CASE WHEN state > 0 THEN class_order END) AS class_order
    FROM per_class
    GROUP BY uscc, year
),
decided AS (
    SELECT t.uscc, t.year,
           CASE WHEN t.class_order IS NULL THEN '微型'
                WHEN p.state = 2 THEN p.class
           END AS size_class
    FROM top t
    LEFT JOIN per_class p ON p.uscc = t.uscc AND p.year = t.year AND p.class_order = t.class_order
)
SELECT x.uscc, x.year, x.industry_code, x.above_category, x.size_sector,
       CASE WHEN x.above_size IS NOT NULL THEN x.above_size
            ELSE COALESCE(x.revenue >= x.revenue_min, false)
       END AS four_above,
       d.size_class
FROM returns x
LEFT JOIN decided d ON d.uscc = x.uscc AND d.year = x.year
