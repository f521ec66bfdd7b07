-- int_above_size — grain: one row per annual return (uscc, year).
-- Sources: int_size_class.
-- Above designated size (规上, the contract's above_size): the return's own flag when it
-- has one; when the flag is null, true when the entity's industry (as of Y-12-31) falls
-- under a rule of scope `industry` (规模以上工业) of above_size_rule and its revenue
-- reaches that rule's revenue_min. With the compiled-in rules that is: section B, C or
-- D and revenue ≥ 20,000,000 元 (2000万元). A null revenue is not above size under the
-- derived rule. An explicit flag is taken as reported (the statistics office's own
-- classification). The other sectors' thresholds (限上批零住餐, 规上服务业) make the
-- 四上 count of int_size_class, not this flag.
-- The flag is decided in int_size_class, which joins each return to its industry's
-- rules for the 四上 flag and the size class anyway; this step keeps the three columns
-- int_entity_year joins twice (the year's flag and the year before's).
SELECT uscc, year, above
FROM int_size_class
