-- Chart reasons_by_version: deactivations per version of the plugin/theme and reason, one project.
SELECT
  project_version,
  reason_id,
  MAX(reason_label) AS reason_label,
  SUM(deactivations) AS deactivations
FROM daily_version_reason_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
GROUP BY project_version, reason_id
ORDER BY project_version, reason_id
