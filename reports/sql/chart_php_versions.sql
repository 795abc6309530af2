-- Chart php_versions: deactivations per php_version of the sites, one project and period.
SELECT value AS php_version, SUM(deactivations) AS deactivations
FROM daily_environment_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
  AND dimension = 'php_version'
GROUP BY value
ORDER BY deactivations DESC, php_version
