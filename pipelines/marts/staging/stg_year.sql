-- stg_year — grain: one row per mart year.
-- Source: the run parameters. Years run from the earliest established_on year in the
-- data (or 2015, whichever is later) to the run date's year (indicators.md §1).
SELECT
    CAST(y AS BIGINT)  AS year,
    make_date(y, 1, 1)   AS year_start,
    make_date(y, 12, 31) AS year_end
FROM (SELECT unnest(range(${first_year}, ${run_year} + 1)) AS y)
