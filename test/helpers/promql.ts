/**
 * The metric names a PromQL expression reads, and the names a `/metrics` page exports: enough PromQL
 * to check a dashboard against the services without a full parser.
 */

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
])

/**
 * The metric names `expr` selects. Strings, label matchers (`{…}`), ranges (`[…]`), label lists of
 * `by`/`without`/`on`/`ignoring`/`group_*` and Grafana variables are left out, and so is every name
 * followed by `(` (a function or an aggregation).
 */
export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
  const names = new Set<string>()
  // Numbers and durations (`10m`, `1.5e3`) are matched first so their letters are not taken for names.
  for (const match of stripped.matchAll(/\d[\w.]*|[a-zA-Z_:][\w:]*/g)) {
    const token = match[0]
    if (/^\d/.test(token) || KEYWORDS.has(token.toLowerCase())) continue
    const rest = stripped.slice((match.index ?? 0) + token.length)
    if (/^\s*\(/.test(rest)) continue
    names.add(token)
  }
  return names
}

/**
 * The sample names a Prometheus text page can carry, from its `# TYPE` lines (a family is listed
 * even before any of its series has a value): a histogram `x` gives `x_bucket`, `x_sum` and
 * `x_count`, a summary `x`, `x_sum` and `x_count`.
 */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>()
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix)
    else names.add(name)
  }
  return names
}
