-- town_cluster — grain: one row per town and mart year in which the town is designated
-- (town_designation_year: the registry as it stood at Y-12-31), as the evaluation.
-- Sources: town_year, county_year, town, town_designation_year, industry_code; the benchmarks of the [cluster]
-- table of evaluation.toml (defaults below), never literals here.
-- Whether a town is a real industrial cluster, after the US Cluster Mapping project's
-- classification, each measure on insured employment (insured_avg) as town_year's
-- location quotient is:
-- * specialised: location_quotient ≥ lq_min (default 1.25); false without an LQ.
-- * industry_group: the GB/T 4754 section (门类) of the town's first registry code.
-- * size_rank: the town's rank by insured_avg among the designated towns of its
--   group in Y (1 the largest, ties share the better rank); large: size_rank ≤
--   ceil(size_top_share × towns in the group) (default 0.5: the top half; a town
--   alone in its group is large).
-- * focus: the town's share of its county's insured employment (town insured_avg /
--   county_year insured_avg); null when the county has none.
-- * strong: location_quotient ≥ strong_lq_min (default 1) and its percent rank among
--   the year's designated towns with an LQ ≥ strong_lq_percentile (default 0.75), and
--   the percent ranks of
--   insured_avg and entities_end among the year's designated towns both above
--   strong_floor_percentile (default 0.25). Percent rank = (rank − 1) / (n − 1), rank
--   1 the smallest, tied towns sharing the lower rank, 0 when n = 1 (a town with no
--   peer is never strong). So towns tied at the 75th percentile are all at it.
WITH designated AS (
    SELECT ty.town_id, ty.year, ty.location_quotient, ty.insured_avg, ty.entities_end,
           t.county_code, COALESCE(ic.section, t.industry_codes[1]) AS industry_group
    FROM town_year ty
    JOIN town t ON t.town_id = ty.town_id
    JOIN town_designation_year s ON s.town_id = ty.town_id AND s.year = ty.year
    LEFT JOIN industry_code ic ON ic.code = t.industry_codes[1]
    WHERE s.designated
),
lq AS (
    SELECT town_id, year,
           PERCENT_RANK() OVER (PARTITION BY year ORDER BY location_quotient) AS lq_rank
    FROM designated
    WHERE location_quotient IS NOT NULL
),
ranked AS (
    SELECT d.*,
           CAST(RANK() OVER (PARTITION BY d.year, d.industry_group ORDER BY d.insured_avg DESC) AS BIGINT) AS size_rank,
           COUNT(*) OVER (PARTITION BY d.year, d.industry_group) AS group_towns,
           PERCENT_RANK() OVER (PARTITION BY d.year ORDER BY d.insured_avg) AS employment_rank,
           PERCENT_RANK() OVER (PARTITION BY d.year ORDER BY d.entities_end) AS establishment_rank
    FROM designated d
)
SELECT r.town_id, r.year, r.industry_group, r.location_quotient,
       COALESCE(r.location_quotient >= ${lq_min}, false) AS specialised,
       r.size_rank,
       r.size_rank <= ceil(${size_top_share} * r.group_towns) AS large,
       CASE WHEN c.insured_avg IS NULL OR c.insured_avg = 0 THEN NULL
            ELSE r.insured_avg / c.insured_avg END AS focus,
       l.lq_rank AS lq_percent_rank,
       r.employment_rank AS employment_percent_rank,
       r.establishment_rank AS establishment_percent_rank,
       COALESCE(r.location_quotient >= ${strong_lq_min} AND l.lq_rank >= ${strong_lq_percentile}
                AND r.employment_rank > ${strong_floor_percentile}
                AND r.establishment_rank > ${strong_floor_percentile}, false) AS strong,
       '${run_id}' AS run_id
FROM ranked r
LEFT JOIN lq l ON l.town_id = r.town_id AND l.year = r.year
LEFT JOIN county_year c ON c.county_code = r.county_code AND c.year = r.year
ORDER BY r.town_id, r.year
