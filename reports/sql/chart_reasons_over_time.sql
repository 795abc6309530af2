-- Chart reasons_over_time: deactivations per UTC day and reason for one project.
SELECT day, reason_id, reason_label, deactivations
FROM daily_reason_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
ORDER BY day, reason_id
