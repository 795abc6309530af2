-- Chart deactivations_per_day: deactivations per UTC day of the period (days without any count as 0);
-- the average of the last 7 days only where all 7 days hold complete data (from the project's first
-- full day of data to its last full day, so it never averages over fewer days or over a partial day);
-- and the partial days: the project's first day of data when it starts after 00:00 UTC
-- (data_from_hour) and its last when it ends before 24:00 (data_until_hour, the hour it stops).
-- Reads aggregates only. No rows at all when the project has no deactivations in the period.
WITH project_hours AS (
  SELECT MIN(hour) AS first_hour, MAX(hour) AS last_hour
  FROM hourly_reason_counts
  WHERE project_hash = @project_hash
),
complete AS (
  SELECT
    first_hour,
    last_hour,
    IF(EXTRACT(HOUR FROM first_hour) = 0, DATE(first_hour), DATE_ADD(DATE(first_hour), INTERVAL 1 DAY))
      AS first_complete_day,
    IF(EXTRACT(HOUR FROM last_hour) = 23, DATE(last_hour), DATE_SUB(DATE(last_hour), INTERVAL 1 DAY))
      AS last_complete_day
  FROM project_hours
),
calendar AS (
  SELECT day
  FROM UNNEST(GENERATE_DATE_ARRAY(DATE_SUB(@start_day, INTERVAL 6 DAY), @end_day)) AS day
),
totals AS (
  SELECT day, SUM(deactivations) AS deactivations
  FROM daily_reason_counts
  WHERE project_hash = @project_hash
    AND day BETWEEN DATE_SUB(@start_day, INTERVAL 6 DAY) AND @end_day
  GROUP BY day
),
dense AS (
  SELECT
    calendar.day,
    COALESCE(totals.deactivations, 0) AS deactivations,
    AVG(COALESCE(totals.deactivations, 0)) OVER (
      ORDER BY calendar.day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW
    ) AS trailing_average
  FROM calendar
  LEFT JOIN totals ON totals.day = calendar.day
)
SELECT
  dense.day,
  dense.deactivations,
  IF(
    DATE_SUB(dense.day, INTERVAL 6 DAY) >= complete.first_complete_day
      AND dense.day <= complete.last_complete_day,
    dense.trailing_average,
    NULL
  ) AS seven_day_average,
  IF(
    dense.day = DATE(complete.first_hour) AND EXTRACT(HOUR FROM complete.first_hour) > 0,
    EXTRACT(HOUR FROM complete.first_hour),
    NULL
  ) AS data_from_hour,
  IF(
    dense.day = DATE(complete.last_hour) AND EXTRACT(HOUR FROM complete.last_hour) < 23,
    EXTRACT(HOUR FROM complete.last_hour) + 1,
    NULL
  ) AS data_until_hour
FROM dense
CROSS JOIN complete
WHERE dense.day >= @start_day
  AND EXISTS (SELECT 1 FROM totals WHERE totals.day >= @start_day)
ORDER BY dense.day
