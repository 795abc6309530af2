-- Aggregate daily_environment_counts: deactivations per project and UTC day by site environment
-- (wp_version, php_version, locale, server_software; see hourly_environment_counts). Summed from
-- hourly_environment_counts (rebuilt first, in the same transaction). Rebuilds the days in @days.
SELECT
  h.project_hash,
  DATE(h.hour) AS day,
  h.dimension,
  h.value,
  SUM(h.deactivations) AS deactivations
FROM hourly_environment_counts AS h
JOIN UNNEST(@days) AS selected_day ON DATE(h.hour) = selected_day
WHERE h.hour >= TIMESTAMP(@start_day)
  AND h.hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY h.project_hash, DATE(h.hour), h.dimension, h.value
