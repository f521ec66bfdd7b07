-- project_year — grain: one row per group (each town, each county, the city) and mart
-- year in which the group has at least one project signed by Y-12-31.
-- Sources: int_project_latest, project, stg_year.
-- Groups: `town` (group_id the project's town; projects given only a county count in
-- their county and the city), `county` (the project's county, or its town's), `city`
-- (140200, every project). The plan's chain 签约 → 开工 → 投产 → 达效
-- ("签约项目早落地、落地项目早建设、建设项目早投产、投产项目早达效"):
-- projects_signed / _started / _in_production / _at_capacity: projects that had
-- reached the stage by Y-12-31 (int_project_latest's *_reached_on); *_in_year: reached
-- it within Y. start_rate (签约项目开工率) = started ÷ signed; production_rate (开工项目投
-- 产率) = in production ÷ started; capacity_rate (投产项目达效率) = at capacity ÷ in
-- production; null when the divisor is 0.
-- planned_investment: Σ planned total investment of the projects signed by Y-12-31 (as
-- their latest report states it). completed_investment: Σ investment completed to date
-- as of each project's latest report on or before Y-12-31 (a project first reported
-- after Y-12-31 adds nothing to Y); projects_reported says how many projects that sum
-- covers; null when none has such a report.
WITH groups AS (
    SELECT 'town' AS group_type, town_id AS group_id, project_id, signed_on,
           started_reached_on, in_production_reached_on, at_capacity_reached_on,
           planned_investment
    FROM int_project_latest WHERE town_id IS NOT NULL
    UNION ALL
    SELECT 'county' AS group_type, county_code AS group_id, project_id, signed_on,
           started_reached_on, in_production_reached_on, at_capacity_reached_on,
           planned_investment
    FROM int_project_latest WHERE county_code IS NOT NULL
    UNION ALL
    SELECT 'city' AS group_type, '140200' AS group_id, project_id, signed_on,
           started_reached_on, in_production_reached_on, at_capacity_reached_on,
           planned_investment
    FROM int_project_latest
),
completed AS (
    SELECT project_id, year, completed_investment
    FROM (
        SELECT p.project_id, y.year, p.completed_investment,
               ROW_NUMBER() OVER (PARTITION BY p.project_id, y.year
                                  ORDER BY p.reported_on DESC) AS latest
        FROM project p
        JOIN stg_year y ON p.reported_on <= y.year_end
    ) r
    WHERE latest = 1
),
counts AS (
    SELECT g.group_type, g.group_id, y.year,
           CAST(COUNT(*) AS BIGINT) AS projects_signed,
           CAST(SUM(CASE WHEN g.signed_on >= y.year_start THEN 1 ELSE 0 END) AS BIGINT)
               AS signed_in_year,
           CAST(SUM(CASE WHEN g.started_reached_on <= y.year_end THEN 1 ELSE 0 END) AS BIGINT)
               AS projects_started,
           CAST(SUM(CASE WHEN g.started_reached_on BETWEEN y.year_start AND y.year_end
                         THEN 1 ELSE 0 END) AS BIGINT) AS started_in_year,
           CAST(SUM(CASE WHEN g.in_production_reached_on <= y.year_end THEN 1 ELSE 0 END)
                AS BIGINT) AS projects_in_production,
           CAST(SUM(CASE WHEN g.in_production_reached_on BETWEEN y.year_start AND y.year_end
                         THEN 1 ELSE 0 END) AS BIGINT) AS in_production_in_year,
           CAST(SUM(CASE WHEN g.at_capacity_reached_on <= y.year_end THEN 1 ELSE 0 END)
                AS BIGINT) AS projects_at_capacity,
           CAST(SUM(CASE WHEN g.at_capacity_reached_on BETWEEN y.year_start AND y.year_end
                         THEN 1 ELSE 0 END) AS BIGINT) AS at_capacity_in_year,
           SUM(g.planned_investment) AS planned_investment,
           SUM(c.completed_investment) AS completed_investment,
           CAST(COUNT(c.project_id) AS BIGINT) AS projects_reported
    FROM groups g
    JOIN stg_year y ON g.signed_on <= y.year_end
    LEFT JOIN completed c ON c.project_id = g.project_id AND c.year = y.year
    GROUP BY g.group_type, g.group_id, y.year
)
SELECT group_type, group_id, year, projects_signed, signed_in_year, projects_started,
       started_in_year, projects_in_production, in_production_in_year,
       projects_at_capacity, at_capacity_in_year, planned_investment,
       CASE WHEN projects_reported = 0 THEN NULL ELSE completed_investment END
           AS completed_investment,
       projects_reported,
       CAST(projects_started AS DOUBLE) / CAST(NULLIF(projects_signed, 0) AS DOUBLE)
           AS start_rate,
       CAST(projects_in_production AS DOUBLE) / CAST(NULLIF(projects_started, 0) AS DOUBLE)
           AS production_rate,
       CAST(projects_at_capacity AS DOUBLE)
           / CAST(NULLIF(projects_in_production, 0) AS DOUBLE) AS capacity_rate,
       '${run_id}' AS run_id
FROM counts
ORDER BY group_type, group_id, year
