-- Aggregate hourly_environment_counts: deactivations per project and raw hour by site
-- environment, one row per (dimension, value): wp_version and php_version (major.minor), locale,
-- server_software (the product name before the '/', lowercased). Missing values are 'unknown'.
-- Rebuilds the raw hours in @hours.
SELECT
  d.project_hash,
  d.raw_hour AS hour,
  environment.dimension,
  environment.value,
  COUNT(*) AS deactivations
FROM deactivations AS d
JOIN UNNEST(@hours) AS selected_hour ON d.raw_hour = selected_hour
CROSS JOIN UNNEST([
  STRUCT('wp_version' AS dimension, COALESCE(NULLIF(TRIM(d.wp_version_mm), ''), 'unknown') AS value),
  STRUCT('php_version' AS dimension, COALESCE(NULLIF(TRIM(d.php_version_mm), ''), 'unknown') AS value),
  STRUCT('locale' AS dimension, COALESCE(NULLIF(TRIM(d.locale), ''), 'unknown') AS value),
  STRUCT(
    'server_software' AS dimension,
    COALESCE(NULLIF(LOWER(TRIM(SPLIT(d.server_software, '/')[SAFE_OFFSET(0)])), ''), 'unknown') AS value
  )
]) AS environment
WHERE d.raw_hour >= TIMESTAMP(@start_day)
  AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY d.project_hash, d.raw_hour, environment.dimension, environment.value
