-- Chart reasons_over_time: deactivations per UTC day and reason for one project, every day of the
-- period for every reason given in it (days without any count as 0), with the partial days marked as
-- in chart_deactivations_per_day (data_from_hour on a first day starting after 00:00 UTC,
-- data_until_hour on a last day ending before 24:00). Reads aggregates only; no rows without data.
WITH counts AS (
  SELECT day, reason_id, reason_label, deactivations
  FROM daily_reason_counts
  WHERE project_hash = @project_hash
    AND day BETWEEN @start_day AND @end_day
),
reasons AS (
  SELECT reason_id, MAX(reason_label) AS reason_label
  FROM counts
  GROUP BY reason_id
),
calendar AS (
  SELECT day FROM UNNEST(GENERATE_DATE_ARRAY(@start_day, @end_day)) AS day
),
project_hours AS (
  SELECT MIN(hour) AS first_hour, MAX(hour) AS last_hour
  FROM hourly_reason_counts
  WHERE project_hash = @project_hash
)
SELECT
  calendar.day,
  reasons.reason_id,
  reasons.reason_label,
  COALESCE(counts.deactivations, 0) AS deactivations,
  IF(
    calendar.day = DATE(project_hours.first_hour) AND EXTRACT(HOUR FROM project_hours.first_hour) > 0,
    EXTRACT(HOUR FROM project_hours.first_hour),
    NULL
  ) AS data_from_hour,
  IF(
    calendar.day = DATE(project_hours.last_hour) AND EXTRACT(HOUR FROM project_hours.last_hour) < 23,
    EXTRACT(HOUR FROM project_hours.last_hour) + 1,
    NULL
  ) AS data_until_hour
FROM calendar
CROSS JOIN reasons
CROSS JOIN project_hours
LEFT JOIN counts ON counts.day = calendar.day AND counts.reason_id = reasons.reason_id
ORDER BY calendar.day, reasons.reason_id
