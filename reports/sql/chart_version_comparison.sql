-- Chart version_comparison: deactivations per known version of the plugin and reason in the period,
-- with each reason's share of its version's deactivations (the figure compares the two newest
-- versions; versions sort numerically in Python, which SQL cannot do portably). Reads aggregates only.
SELECT
  project_version,
  reason_id,
  MAX(reason_label) AS reason_label,
  SUM(deactivations) AS deactivations,
  SUM(deactivations) / SUM(SUM(deactivations)) OVER (PARTITION BY project_version) AS share
FROM daily_version_reason_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
  AND project_version != 'unknown'
GROUP BY project_version, reason_id
ORDER BY project_version, reason_id
