-- Aggregate hourly_environment_counts: deactivations per project and raw hour by site
-- environment, one row per (dimension, value): wp_version and php_version (major.minor), locale,
-- server_software (the product name before the '/', lowercased). Missing values are 'unknown'.
-- Counts per stored value first (one GROUP BY per dimension), then cleans the few distinct values:
-- far cheaper than cleaning or unpivoting every history row. Rebuilds the raw hours in @hours.
WITH selected AS (
  SELECT d.project_hash, d.raw_hour, d.wp_version_mm, d.php_version_mm, d.locale, d.server_software
  FROM deactivations AS d
  JOIN UNNEST(@hours) AS selected_hour ON d.raw_hour = selected_hour
  WHERE d.raw_hour >= TIMESTAMP(@start_day)
    AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
),
stored_values AS (
  SELECT project_hash, raw_hour, 'wp_version' AS dimension, wp_version_mm AS stored, COUNT(*) AS n
  FROM selected
  GROUP BY project_hash, raw_hour, wp_version_mm
  UNION ALL
  SELECT project_hash, raw_hour, 'php_version' AS dimension, php_version_mm AS stored, COUNT(*) AS n
  FROM selected
  GROUP BY project_hash, raw_hour, php_version_mm
  UNION ALL
  SELECT project_hash, raw_hour, 'locale' AS dimension, locale AS stored, COUNT(*) AS n
  FROM selected
  GROUP BY project_hash, raw_hour, locale
  UNION ALL
  SELECT project_hash, raw_hour, 'server_software' AS dimension, server_software AS stored, COUNT(*) AS n
  FROM selected
  GROUP BY project_hash, raw_hour, server_software
),
cleaned AS (
  SELECT
    project_hash,
    raw_hour,
    dimension,
    COALESCE(
      NULLIF(
        CASE
          WHEN dimension = 'server_software' THEN LOWER(TRIM(SPLIT(stored, '/')[SAFE_OFFSET(0)]))
          ELSE TRIM(stored)
        END,
        ''
      ),
      'unknown'
    ) AS value,
    n
  FROM stored_values
)
SELECT project_hash, raw_hour AS hour, dimension, value, SUM(n) AS deactivations
FROM cleaned
GROUP BY project_hash, raw_hour, dimension, value
