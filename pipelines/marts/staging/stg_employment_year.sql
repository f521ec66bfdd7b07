-- stg_employment_year — grain: one row per entity and calendar year with returns.
-- Source: employment. The monthly returns summed per year, so that the marts join
-- members to one row per year instead of twelve (a member-year would otherwise meet
-- every month of every year of its returns).
SELECT uscc,
       CAST(date_part('year', period) AS BIGINT) AS year,
       SUM(insured) AS insured_sum,
       SUM(wage_total) AS wage_total,
       SUM(new_hires) AS new_hires,
       SUM(separations) AS separations,
       SUM(trained) AS trained
FROM employment
GROUP BY uscc, CAST(date_part('year', period) AS BIGINT)
