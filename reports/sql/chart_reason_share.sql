-- Chart reason_share: each reason's deactivations and share of all in the period, for one project.
SELECT
  reason_id,
  MAX(reason_label) AS reason_label,
  SUM(deactivations) AS deactivations,
  SUM(deactivations) / SUM(SUM(deactivations)) OVER () AS share
FROM daily_reason_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
GROUP BY reason_id
ORDER BY deactivations DESC, reason_id
