-- Aggregate daily_environment_counts: deactivations per project and UTC day by site
-- environment, one row per (dimension, value): wp_version and php_version (major.minor), locale,
-- server_software (the product name before the '/', lowercased). Missing values are 'unknown'.
-- Rebuilds the days in @days.
SELECT
  d.project_hash,
  DATE(d.raw_hour) AS day,
  environment.dimension,
  environment.value,
  COUNT(*) AS deactivations
FROM deactivations AS d
JOIN UNNEST(@days) AS selected_day ON DATE(d.raw_hour) = selected_day
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
GROUP BY d.project_hash, DATE(d.raw_hour), environment.dimension, environment.value
