-- Chart reason_share_by_wp_version: Reason share by WordPress version.
-- Params: @project_hash STRING, @start_day DATE, @end_day DATE. Promoted from a notebook.
WITH counts AS (
  SELECT
    COALESCE(wp_version_mm, 'unknown') AS wordpress_version,
    reason_id,
    ANY_VALUE(reason_label) AS reason_label,
    COUNT(*) AS deactivations
  FROM deactivations
  WHERE project_hash = @project_hash
    AND raw_hour >= TIMESTAMP(@start_day)
    AND raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
  GROUP BY wordpress_version, reason_id
)
SELECT
  wordpress_version,
  reason_id,
  reason_label,
  deactivations,
  deactivations / SUM(deactivations) OVER (PARTITION BY wordpress_version) AS share
FROM counts
ORDER BY wordpress_version, reason_id
