-- Aggregate daily_version_reason_counts: deactivations per project, UTC day, version of the
-- plugin/theme being deactivated, and reason. Summed from hourly_version_reason_counts (rebuilt
-- first, in the same transaction). Rebuilds the days in @days.
SELECT
  h.project_hash,
  DATE(h.hour) AS day,
  h.project_version,
  h.reason_id,
  MAX(h.reason_label) AS reason_label,
  SUM(h.deactivations) AS deactivations
FROM hourly_version_reason_counts AS h
JOIN UNNEST(@days) AS selected_day ON DATE(h.hour) = selected_day
WHERE h.hour >= TIMESTAMP(@start_day)
  AND h.hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY h.project_hash, DATE(h.hour), h.project_version, h.reason_id
