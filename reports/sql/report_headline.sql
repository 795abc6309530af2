-- Report headline: each reason's deactivations for one project in the period (@start_day..@end_day)
-- and in the previous period of the same length (the days just before), and the project's first and
-- last hours with any data (so "no earlier data" is told apart from "0 deactivations", and a partial
-- first or last day is said). Reads aggregates only.
SELECT
  reason_id,
  MAX(reason_label) AS reason_label,
  SUM(IF(day >= @start_day, deactivations, 0)) AS deactivations,
  SUM(IF(day < @start_day, deactivations, 0)) AS previous_deactivations,
  (
    SELECT MIN(earliest.hour) FROM hourly_reason_counts AS earliest
    WHERE earliest.project_hash = @project_hash
  ) AS first_hour,
  (
    SELECT MAX(latest.hour) FROM hourly_reason_counts AS latest
    WHERE latest.project_hash = @project_hash
  ) AS last_hour
FROM daily_reason_counts
WHERE project_hash = @project_hash
  AND day BETWEEN DATE_SUB(@start_day, INTERVAL DATE_DIFF(@end_day, @start_day, DAY) + 1 DAY) AND @end_day
GROUP BY reason_id
ORDER BY deactivations DESC, reason_id
