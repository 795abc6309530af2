-- Aggregate daily_dead_letter_counts: rejected records per project and UTC day of their raw hour,
-- by dead-letter type. Records whose project could not be read count under project_hash ''.
-- Rebuilds the days in @days.
SELECT
  COALESCE(e.project_hash, '') AS project_hash,
  DATE(e.raw_hour) AS day,
  e.error_type,
  COUNT(*) AS dead_letters
FROM deactivation_errors AS e
JOIN UNNEST(@days) AS selected_day ON DATE(e.raw_hour) = selected_day
WHERE e.raw_hour >= TIMESTAMP(@start_day)
  AND e.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY COALESCE(e.project_hash, ''), DATE(e.raw_hour), e.error_type
