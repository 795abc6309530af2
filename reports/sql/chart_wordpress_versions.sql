-- Chart wordpress_versions: deactivations per wp_version of the sites, one project and period.
SELECT value AS wp_version, SUM(deactivations) AS deactivations
FROM daily_environment_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
  AND dimension = 'wp_version'
GROUP BY value
ORDER BY deactivations DESC, wp_version
