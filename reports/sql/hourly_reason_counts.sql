-- Aggregate hourly_reason_counts: deactivations per project, raw hour and reason, with the
-- reason's share of that project's hour. Rebuilds the raw hours in @hours (the range bounds only
-- let BigQuery prune hour partitions).
SELECT
  d.project_hash,
  d.raw_hour AS hour,
  d.reason_id,
  MAX(d.reason_label) AS reason_label,
  COUNT(*) AS deactivations,
  COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY d.project_hash, d.raw_hour) AS share
FROM deactivations AS d
JOIN UNNEST(@hours) AS selected_hour ON d.raw_hour = selected_hour
WHERE d.raw_hour >= TIMESTAMP(@start_day)
  AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY d.project_hash, d.raw_hour, d.reason_id
