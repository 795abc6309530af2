-- Aggregate hourly_version_reason_counts: deactivations per project, raw hour, version of the
-- plugin/theme being deactivated ('unknown' when missing), and reason; the base of
-- hourly_reason_counts. Counts per stored version first, then cleans the few distinct versions.
-- Rebuilds the raw hours in @hours.
WITH stored_versions AS (
  SELECT
    d.project_hash,
    d.raw_hour,
    d.project_version,
    d.reason_id,
    MAX(d.reason_label) AS reason_label,
    COUNT(*) AS n
  FROM deactivations AS d
  JOIN UNNEST(@hours) AS selected_hour ON d.raw_hour = selected_hour
  WHERE d.raw_hour >= TIMESTAMP(@start_day)
    AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
  GROUP BY d.project_hash, d.raw_hour, d.project_version, d.reason_id
)
SELECT
  project_hash,
  raw_hour AS hour,
  COALESCE(NULLIF(TRIM(project_version), ''), 'unknown') AS project_version,
  reason_id,
  MAX(reason_label) AS reason_label,
  SUM(n) AS deactivations
FROM stored_versions
GROUP BY project_hash, raw_hour, COALESCE(NULLIF(TRIM(project_version), ''), 'unknown'), reason_id
