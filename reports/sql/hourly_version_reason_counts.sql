-- Aggregate hourly_version_reason_counts: deactivations per project, raw hour, version of the
-- plugin/theme being deactivated, and reason. Rebuilds the raw hours in @hours.
SELECT
  d.project_hash,
  d.raw_hour AS hour,
  COALESCE(NULLIF(TRIM(d.project_version), ''), 'unknown') AS project_version,
  d.reason_id,
  MAX(d.reason_label) AS reason_label,
  COUNT(*) AS deactivations
FROM deactivations AS d
JOIN UNNEST(@hours) AS selected_hour ON d.raw_hour = selected_hour
WHERE d.raw_hour >= TIMESTAMP(@start_day)
  AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY d.project_hash, d.raw_hour, COALESCE(NULLIF(TRIM(d.project_version), ''), 'unknown'), d.reason_id
