-- Chart server_software: deactivations per server_software of the sites, one project and period.
SELECT value AS server_software, SUM(deactivations) AS deactivations
FROM daily_environment_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
  AND dimension = 'server_software'
GROUP BY value
ORDER BY deactivations DESC, server_software
