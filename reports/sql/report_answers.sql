-- Report answers: the written answers (reason_info) of one project in the period, newest first, at
-- most 500 of them (the report says how many there were in all: total_answers). Reads history: free
-- text is in no aggregate. The text is masked (e-mails, URLs, IPs, phone numbers) before it is shown.
SELECT
  received_at,
  reason_id,
  reason_label,
  COALESCE(NULLIF(TRIM(project_version), ''), 'unknown') AS project_version,
  reason_info,
  COUNT(*) OVER () AS total_answers
FROM deactivations
WHERE project_hash = @project_hash
  AND raw_hour >= TIMESTAMP(@start_day)
  AND raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
  AND REGEXP_CONTAINS(COALESCE(reason_info, ''), r'\S')
ORDER BY received_at DESC, event_id
LIMIT 500
