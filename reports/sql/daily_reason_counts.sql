-- Aggregate daily_reason_counts: deactivations per project, UTC day and reason, with the
-- reason's share of that project's day. Rebuilds the days in @days.
SELECT
  d.project_hash,
  DATE(d.raw_hour) AS day,
  d.reason_id,
  MAX(d.reason_label) AS reason_label,
  COUNT(*) AS deactivations,
  COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY d.project_hash, DATE(d.raw_hour)) AS share
FROM deactivations AS d
JOIN UNNEST(@days) AS selected_day ON DATE(d.raw_hour) = selected_day
WHERE d.raw_hour >= TIMESTAMP(@start_day)
  AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY d.project_hash, DATE(d.raw_hour), d.reason_id
