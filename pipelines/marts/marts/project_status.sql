-- project_status — grain: one row per project of the major-project ledger (重点项目库),
-- as its latest report states it. Sources: int_project_latest.
-- investor_origin: where the investor is registered, read from its USCC's registration
-- authority code (characters 3–8): `city` (1402…), `province` (14… elsewhere in 山西),
-- `outside_province`; null without an investor USCC.
SELECT project_id, name, town_id, county_code, industry_code, investor_uscc,
       investor_name,
       CASE WHEN investor_uscc IS NULL THEN NULL
            WHEN substr(investor_uscc, 3, 4) = '1402' THEN 'city'
            WHEN substr(investor_uscc, 3, 2) = '14' THEN 'province'
            ELSE 'outside_province' END AS investor_origin,
       stage, signed_on, started_reached_on, in_production_reached_on,
       at_capacity_reached_on, planned_investment, completed_investment, reported_on,
       '${run_id}' AS run_id
FROM int_project_latest
ORDER BY project_id
