-- int_industry_rule — grain: one row per GB/T 4754-2017 code (industry_code).
-- Sources: industry_code, above_size_rule, size_class_rule (the bureau's rules as
-- reference data: sample-data/reference/above_size_thresholds.csv and size_classes.csv,
-- compiled in, or the pipeline's own files).
-- Each code takes, in each rule table, the rule of its longest matching prefix: a
-- prefix matches a code when it is the code's section letter or the code starts with
-- it (7010 房地产开发经营 takes its own rule, not a rule of K). A code no rule matches
-- has nulls: it is outside the 四上 statistics (above_scope null; e.g. A agriculture,
-- J finance) or outside the 2017 size classes (size_sector null; J finance has its own
-- standard, S and T are not enterprises).
WITH above_match AS (
    SELECT ic.code, r.scope, r.category, r.revenue_min,
           ROW_NUMBER() OVER (PARTITION BY ic.code ORDER BY length(r.industry_prefix) DESC) AS n
    FROM industry_code ic
    JOIN above_size_rule r
      ON r.industry_prefix = ic.section OR starts_with(ic.code, r.industry_prefix)
),
size_match AS (
    SELECT ic.code, r.sector, r.industry_prefix,
           ROW_NUMBER() OVER (PARTITION BY ic.code ORDER BY length(r.industry_prefix) DESC) AS n
    FROM industry_code ic
    JOIN (SELECT DISTINCT sector, industry_prefix FROM size_class_rule) r
      ON r.industry_prefix = ic.section OR starts_with(ic.code, r.industry_prefix)
)
SELECT ic.code, ic.section,
       a.scope AS above_scope, a.category AS above_category, a.revenue_min,
       s.sector AS size_sector, s.industry_prefix AS size_prefix
FROM industry_code ic
LEFT JOIN above_match a ON a.code = ic.code AND a.n = 1
LEFT JOIN size_match s ON s.code = ic.code AND s.n = 1
