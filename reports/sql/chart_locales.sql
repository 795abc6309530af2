-- Chart locales: deactivations per locale of the sites, one project and period.
SELECT value AS locale, SUM(deactivations) AS deactivations
FROM daily_environment_counts
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
  AND dimension = 'locale'
GROUP BY value
ORDER BY deactivations DESC, locale
