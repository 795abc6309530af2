-- Chart deactivations_per_day: total deactivations per UTC day (days without any count as 0) and
-- the trailing 7-day average, which also looks at the 6 days before the period but never before
-- the project's first deactivation (so the average does not start by ramping up from zero).
-- No rows at all when the project has no deactivations in the period (the chart shows its empty state).
WITH calendar AS (
  SELECT day
  FROM UNNEST(GENERATE_DATE_ARRAY(
    GREATEST(
      DATE_SUB(@start_day, INTERVAL 6 DAY),
      COALESCE(
        (SELECT MIN(earliest.day) FROM daily_reason_counts AS earliest WHERE earliest.project_hash = @project_hash),
        @start_day
      )
    ),
    @end_day
  )) AS day
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
    ) AS seven_day_average
  FROM calendar
  LEFT JOIN totals ON totals.day = calendar.day
)
SELECT day, deactivations, seven_day_average
FROM dense
WHERE day >= @start_day
  AND EXISTS (SELECT 1 FROM totals WHERE totals.day >= @start_day)
ORDER BY day
