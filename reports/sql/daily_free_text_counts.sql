-- Aggregate daily_free_text_counts: deactivations per project and UTC day (of the raw hour, like
-- the other aggregates), and how many of them carried a free-text answer (anything but
-- whitespace). Rebuilds the days in @days.
SELECT
  d.project_hash,
  DATE(d.raw_hour) AS day,
  COUNT(*) AS deactivations,
  COUNTIF(REGEXP_CONTAINS(COALESCE(d.reason_info, ''), r'\S')) AS with_text
FROM deactivations AS d
JOIN UNNEST(@days) AS selected_day ON DATE(d.raw_hour) = selected_day
WHERE d.raw_hour >= TIMESTAMP(@start_day)
  AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
GROUP BY d.project_hash, DATE(d.raw_hour)
