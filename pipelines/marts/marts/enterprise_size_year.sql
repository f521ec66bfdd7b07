-- enterprise_size_year — grain: one row per annual return (uscc, year).
-- Sources: int_size_class.
-- How the bureau's classification rules place each enterprise-year (the rules:
-- int_size_class and int_above_size): size_class 大型/中型/小型/微型 (null when it cannot be
-- decided from the figures collected), the 四上 category of its industry and whether the
-- return is in it (four_above), and the contract's above_size (规上) as town_year counts
-- it. The industry is the entity's as of Y-12-31 (null when the return's year is not a
-- year the entity existed in).
SELECT s.uscc, s.year, s.industry_code, s.size_sector, s.size_class,
       s.above_category, s.four_above, s.above AS above_size,
       '${run_id}' AS run_id
FROM int_size_class s
ORDER BY s.uscc, s.year
