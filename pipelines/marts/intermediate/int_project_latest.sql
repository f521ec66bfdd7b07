-- int_project_latest — grain: one row per project: its latest report (the greatest
-- reported_on; the ledger keeps every report, a re-sent one replaces itself).
-- Sources: project, town.
-- county_code: the report's county, else its town's county (town registry).
-- planned_investment: the latest report's, else the latest figure an earlier report
-- gave (a monthly report that leaves 计划总投资 blank does not erase the plan).
-- *_reached_on: the day the project reached the stage: the latest report's date of the
-- stage; else the earliest evidence among all its reports: a report's date of the
-- stage, else of a later stage (a project in production has started), or — when a
-- report's stage says the stage is reached but gives no date — that report's as-of
-- date (reported_on: "by then it had"). So a later report that leaves a date blank
-- does not move a stage an earlier report saw into a later year, while a date the
-- latest report gives (a correction) wins. A date given for a stage beyond
-- the reported stage counts as reached (签约 with a 开工日期 has started). Ingestion has
-- checked the dates' order (签约 ≤ 开工 ≤ 投产 ≤ 达效 ≤ 截至日期).
SELECT p.project_id, p.name, p.town_id,
       COALESCE(p.county_code, t.county_code) AS county_code,
       p.industry_code, p.investor_uscc, p.investor_name, p.stage, p.signed_on,
       COALESCE(p.started_on, ev.started) AS started_reached_on,
       COALESCE(p.in_production_on, ev.in_production) AS in_production_reached_on,
       COALESCE(p.at_capacity_on, ev.at_capacity) AS at_capacity_reached_on,
       COALESCE(p.planned_investment, pl.planned_investment) AS planned_investment,
       p.completed_investment, p.reported_on
FROM (
    SELECT project.*,
           ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY reported_on DESC) AS latest
    FROM project
) p
LEFT JOIN town t ON t.town_id = p.town_id
LEFT JOIN (
    SELECT project_id,
           MIN(COALESCE(started_on, in_production_on, at_capacity_on,
                        CASE WHEN stage IN ('started', 'in_production', 'at_capacity')
                             THEN reported_on END)) AS started,
           MIN(COALESCE(in_production_on, at_capacity_on,
                        CASE WHEN stage IN ('in_production', 'at_capacity')
                             THEN reported_on END)) AS in_production,
           MIN(COALESCE(at_capacity_on,
                        CASE WHEN stage = 'at_capacity' THEN reported_on END)) AS at_capacity
    FROM project
    GROUP BY project_id
) ev ON ev.project_id = p.project_id
LEFT JOIN (
    SELECT project_id, planned_investment
    FROM (
        SELECT project_id, planned_investment,
               ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY reported_on DESC) AS latest
        FROM project
        WHERE planned_investment IS NOT NULL
    ) g
    WHERE g.latest = 1
) pl ON pl.project_id = p.project_id
WHERE p.latest = 1
