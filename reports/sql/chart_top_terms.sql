-- Chart top_terms: the 8 most frequent words of the free-text answers per reason, one project and
-- period. Words used only once are left out: they say little and are the likeliest to identify someone.
SELECT
  reason_id,
  MAX(reason_label) AS reason_label,
  term,
  SUM(mentions) AS mentions
FROM daily_reason_terms
WHERE project_hash = @project_hash
  AND day BETWEEN @start_day AND @end_day
GROUP BY reason_id, term
HAVING SUM(mentions) >= 2
QUALIFY ROW_NUMBER() OVER (PARTITION BY reason_id ORDER BY SUM(mentions) DESC, term) <= 8
ORDER BY reason_id, mentions DESC, term
