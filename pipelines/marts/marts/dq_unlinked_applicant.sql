-- dq_unlinked_applicant — grain: one row per patent applicant position that links to
-- no single registry entry (universities, persons, firms outside the city, ambiguous
-- names). Sources: patent_applicant, patent. They count in patents_granted_frac's
-- denominator but never make a patent a town's.
SELECT pa.application_no, pa.position, pa.applicant_name, p.patent_type, p.applied_on,
       p.granted_on, '${run_id}' AS run_id
FROM patent_applicant pa
JOIN patent p ON p.application_no = pa.application_no
WHERE pa.uscc IS NULL
ORDER BY pa.application_no, pa.position
