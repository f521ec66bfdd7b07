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
-- above (规上, the contract's above_size, as town_year counts it): the return's own
-- above_size flag when it has one; when it is null, true when the industry falls under
-- a rule of scope `industry` (规模以上工业) and the revenue reaches that rule's
-- revenue_min. With the compiled-in rules: section B, C or D and revenue ≥ 20,000,000
-- 元 (2000万元); a null revenue is not above. int_above_size keeps these three columns
-- for int_entity_year: the two flags come from the same join of each return with its
-- industry's rules, which was made twice when int_above_size made its own.
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
-- One pass, no row per band: the size_class_rule table always has the four classes
-- 微型 1 … 大型 4 for every sector and indicator, each once (the loader refuses
-- anything else), so the bands of 小型, 中型 and 大型 of a sector are first folded into
-- one row per sector and industry prefix (`bands`: each class's lower bound per
-- indicator, and how many of its indicators townstat does not collect), and each
-- return is joined to at most that one row. A return whose industry has no sector
-- joins none (bands 0). (The classes above 微型 are named by their class_order. Joining
-- each return to every band and grouping by return gave the same answers, but built 5.8
-- M rows and 1.07 M groups at scale 100.)
WITH returns AS (
    SELECT a.uscc, a.year, a.revenue, a.employees, a.above_size,
           ey.industry_code, r.above_category, r.above_scope, r.revenue_min,
           r.size_sector, r.size_prefix
    FROM enterprise_annual a
    LEFT JOIN stg_enterprise_year ey ON ey.uscc = a.uscc AND ey.year = a.year
    LEFT JOIN int_industry_rule r ON r.code = ey.industry_code
),
bands AS (
    -- <indicator>_<class>: the class's lower bound (null when the sector does not use
    -- that indicator); uncollected_<class>: the class's indicators townstat has no
    -- value for (assets).
    SELECT sector, industry_prefix, COUNT(*) AS bands,
           MAX(CASE WHEN class_order = 4 AND indicator = 'employees' THEN s.lower END) AS employees_large,
           MAX(CASE WHEN class_order = 4 AND indicator = 'revenue' THEN s.lower END) AS revenue_large,
           SUM(CASE WHEN class_order = 4 AND indicator NOT IN ('employees', 'revenue') THEN 1 ELSE 0 END) AS uncollected_large,
           MAX(CASE WHEN class_order = 3 AND indicator = 'employees' THEN s.lower END) AS employees_medium,
           MAX(CASE WHEN class_order = 3 AND indicator = 'revenue' THEN s.lower END) AS revenue_medium,
           SUM(CASE WHEN class_order = 3 AND indicator NOT IN ('employees', 'revenue') THEN 1 ELSE 0 END) AS uncollected_medium,
           MAX(CASE WHEN class_order = 2 AND indicator = 'employees' THEN s.lower END) AS employees_small,
           MAX(CASE WHEN class_order = 2 AND indicator = 'revenue' THEN s.lower END) AS revenue_small,
           SUM(CASE WHEN class_order = 2 AND indicator NOT IN ('employees', 'revenue') THEN 1 ELSE 0 END) AS uncollected_small
    FROM size_class_rule s
    WHERE class_order > 1
    GROUP BY sector, industry_prefix
),
checked AS (
    SELECT x.uscc, x.year, x.industry_code, x.above_category, x.size_sector,
           CAST(x.employees AS DECIMAL(38, 2)) AS employees,
           CAST(x.revenue AS DECIMAL(38, 2)) AS revenue,
           CASE WHEN x.above_size IS NOT NULL THEN x.above_size
                ELSE COALESCE(x.revenue >= x.revenue_min, false)
           END AS four_above,
           CASE WHEN x.above_size IS NOT NULL THEN x.above_size
                ELSE COALESCE(x.above_scope = 'industry' AND x.revenue >= x.revenue_min, false)
           END AS above,
           COALESCE(b.bands, 0) AS bands,
           CAST(b.employees_large AS DECIMAL(38, 2)) AS employees_large,
           CAST(b.revenue_large AS DECIMAL(38, 2)) * 10000 AS revenue_large,
           b.uncollected_large,
           CAST(b.employees_medium AS DECIMAL(38, 2)) AS employees_medium,
           CAST(b.revenue_medium AS DECIMAL(38, 2)) * 10000 AS revenue_medium,
           b.uncollected_medium,
           CAST(b.employees_small AS DECIMAL(38, 2)) AS employees_small,
           CAST(b.revenue_small AS DECIMAL(38, 2)) * 10000 AS revenue_small,
           b.uncollected_small
    FROM returns x
    LEFT JOIN bands b ON b.sector = x.size_sector AND b.industry_prefix = x.size_prefix
),
per_return AS (
    -- below_<class>: indicators below the class's lower bound (the return has the value
    -- and it is smaller); unknown_<class>: indicators that cannot be compared (the
    -- return has no value, or townstat collects no such indicator).
    SELECT uscc, year, industry_code, above_category, size_sector, four_above, above, bands,
           CASE WHEN employees < employees_large THEN 1 ELSE 0 END
             + CASE WHEN revenue < revenue_large THEN 1 ELSE 0 END AS below_large,
           CASE WHEN employees_large IS NOT NULL AND employees IS NULL THEN 1 ELSE 0 END
             + CASE WHEN revenue_large IS NOT NULL AND revenue IS NULL THEN 1 ELSE 0 END
             + COALESCE(uncollected_large, 0) AS unknown_large,
           CASE WHEN employees < employees_medium THEN 1 ELSE 0 END
             + CASE WHEN revenue < revenue_medium THEN 1 ELSE 0 END AS below_medium,
           CASE WHEN employees_medium IS NOT NULL AND employees IS NULL THEN 1 ELSE 0 END
             + CASE WHEN revenue_medium IS NOT NULL AND revenue IS NULL THEN 1 ELSE 0 END
             + COALESCE(uncollected_medium, 0) AS unknown_medium,
           CASE WHEN employees < employees_small THEN 1 ELSE 0 END
             + CASE WHEN revenue < revenue_small THEN 1 ELSE 0 END AS below_small,
           CASE WHEN employees_small IS NOT NULL AND employees IS NULL THEN 1 ELSE 0 END
             + CASE WHEN revenue_small IS NOT NULL AND revenue IS NULL THEN 1 ELSE 0 END
             + COALESCE(uncollected_small, 0) AS unknown_small
    FROM checked
)
-- The largest class with no indicator below its lower bound decides: met when none of
-- its indicators is unknown, else null; 微型 when every larger class has one below.
SELECT uscc, year, industry_code, above_category, size_sector, four_above, above,
       CASE WHEN bands = 0 THEN CAST(NULL AS VARCHAR)
            WHEN below_large = 0 THEN CASE WHEN unknown_large = 0 THEN '大型' END
            WHEN below_medium = 0 THEN CASE WHEN unknown_medium = 0 THEN '中型' END
            WHEN below_small = 0 THEN CASE WHEN unknown_small = 0 THEN '小型' END
            ELSE '微型'
       END AS size_class
FROM per_return
