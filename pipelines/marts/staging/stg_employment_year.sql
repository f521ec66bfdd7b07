-- stg_employment_year — grain: one row per entity and calendar year with returns.
-- Source: employment. The monthly returns summed per year, so that the marts join
-- members to one row per year instead of twelve (a member-year would otherwise meet
-- every month of every year of its returns).
-- Counts are summed exactly as DECIMAL(38, 0) and cast back to BIGINT: a BIGINT SUM
-- wraps silently past 2^63 (DataFusion adds with wrapping), while the cast fails the
-- run with "too large" instead of writing a negative figure. Ingestion bounds every
-- count to ±10,000,000 (docs/decisions.md, "Plausible ranges"), so twelve months sum
-- to at most 1.2·10^8 and the cast never fails on data loaded since; the guard is for
-- rows loaded before the bound existed. Money is Decimal128(20,2); its SUM is
-- Decimal128(30,2), which no number of rows at ±10^15 元 can overflow in practice.
SELECT uscc,
       CAST(date_part('year', period) AS BIGINT) AS year,
       CAST(SUM(CAST(insured AS DECIMAL(38, 0))) AS BIGINT) AS insured_sum,
       SUM(wage_total) AS wage_total,
       CAST(SUM(CAST(new_hires AS DECIMAL(38, 0))) AS BIGINT) AS new_hires,
       CAST(SUM(CAST(separations AS DECIMAL(38, 0))) AS BIGINT) AS separations,
       CAST(SUM(CAST(trained AS DECIMAL(38, 0))) AS BIGINT) AS trained
FROM employment
GROUP BY uscc, CAST(date_part('year', period) AS BIGINT)
