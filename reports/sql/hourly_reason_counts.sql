-- Aggregate hourly_reason_counts: deactivations per project, raw hour and reason, with the
-- reason's share of that project's hour. Summed from hourly_version_reason_counts (rebuilt
-- first, in the same transaction) instead of scanning history again. Rebuilds the raw hours in @hours.
SELECT
  v.project_hash,
  v.hour,
  v.reason_id,
  MAX(v.reason_label) AS reason_label,
  SUM(v.deactivations) AS deactivations,
  SUM(v.deactivations) / SUM(SUM(v.deactivations)) OVER (PARTITION BY v.project_hash, v.hour) AS share
FROM hourly_version_reason_counts AS v
JOIN UNNEST(@hours) AS selected_hour ON v.hour = selected_hour
WHERE v.hour >= TIMESTAMP(@start_day)
  AND v.hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY v.project_hash, v.hour, v.reason_id
