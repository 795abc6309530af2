-- Aggregate daily_reason_counts: deactivations per project, UTC day and reason, with the
-- reason's share of that project's day. Summed from hourly_reason_counts (rebuilt first, in the
-- same transaction), which is far cheaper than scanning history again. Rebuilds the days in @days.
SELECT
  h.project_hash,
  DATE(h.hour) AS day,
  h.reason_id,
  MAX(h.reason_label) AS reason_label,
  SUM(h.deactivations) AS deactivations,
  SUM(h.deactivations) / SUM(SUM(h.deactivations)) OVER (PARTITION BY h.project_hash, DATE(h.hour)) AS share
FROM hourly_reason_counts AS h
JOIN UNNEST(@days) AS selected_day ON DATE(h.hour) = selected_day
WHERE h.hour >= TIMESTAMP(@start_day)
  AND h.hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY h.project_hash, DATE(h.hour), h.reason_id
