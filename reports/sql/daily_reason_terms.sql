-- Aggregate daily_reason_terms: how often each word occurs in the free-text answers
-- (reason_info) per project, UTC day and reason. No personal data: e-mail addresses, URLs and
-- anything with a dot inside (domains, versions) are removed first, then only runs of letters of
-- 3+ characters are kept (so no numbers), lowercased, without stop words. Identical answers are
-- counted first and split once (the regular expressions are the expensive part). Rebuilds the days in @days.
WITH answers AS (
  SELECT
    d.project_hash,
    DATE(d.raw_hour) AS day,
    d.reason_id,
    MAX(d.reason_label) AS reason_label,
    d.reason_info,
    COUNT(*) AS answers
  FROM deactivations AS d
  JOIN UNNEST(@days) AS selected_day ON DATE(d.raw_hour) = selected_day
  WHERE d.raw_hour >= TIMESTAMP(@start_day)
    AND d.raw_hour < TIMESTAMP(DATE_ADD(@end_day, INTERVAL 1 DAY))
    AND d.reason_info IS NOT NULL
    AND d.reason_info != ''
  GROUP BY d.project_hash, DATE(d.raw_hour), d.reason_id, d.reason_info
)
SELECT
  a.project_hash,
  a.day,
  a.reason_id,
  MAX(a.reason_label) AS reason_label,
  term,
  SUM(a.answers) AS mentions
FROM answers AS a
CROSS JOIN UNNEST(REGEXP_EXTRACT_ALL(
  REGEXP_REPLACE(LOWER(a.reason_info), r'\S+@\S+|\S*://\S*|\S+\.\S+', ' '), r'\p{L}{3,}'
)) AS term
WHERE term NOT IN UNNEST([
  'about', 'after', 'again', 'all', 'also', 'and', 'any', 'are', 'back', 'because', 'been', 'but',
  'can', 'could', 'did', 'does', 'doesn', 'don', 'for', 'from', 'get', 'had', 'has', 'have', 'how',
  'into', 'its', 'just', 'more', 'most', 'much', 'not', 'now', 'off', 'only', 'other',
  'our', 'out', 'please', 'plugin', 'same', 'some', 'still', 'such', 'than', 'that', 'the', 'their',
  'them', 'then', 'there', 'these', 'they', 'this', 'too', 'use', 'using', 'very', 'was', 'way',
  'were', 'what', 'when', 'which', 'while', 'who', 'why', 'will', 'with', 'would', 'you', 'your'
])
GROUP BY a.project_hash, a.day, a.reason_id, term
