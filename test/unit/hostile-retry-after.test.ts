/**
 * `Retry-After` from a hostile server (the pure parser shared by the source poller and the sink):
 * seconds are honoured and clamped to the cap however huge; HTTP dates in the three forms of
 * RFC 9110 are honoured when in the future; everything else (negative numbers, text, past dates,
 * dates Date.parse would guess at, impossible calendar days) gives undefined, i.e. the backoff.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { parseRetryAfter } from '../../src/domain/retry-policy.ts'

const now = Date.parse('2026-01-01T00:00:00Z')
const cap = 30_000
const RUNS = 200

test('negative, huge, non-numeric and past values', () => {
  const cases: Array<[string, number | undefined]> = [
    ['0', 0],
    ['2', 2000],
    [' 7 ', 7000],
    ['1.5', 1500],
    ['3600', cap],
    ['9'.repeat(400), cap],
    ['-5', undefined],
    ['-0', undefined],
    ['+5', undefined],
    ['1e3', undefined],
    ['0x10', undefined],
    ['Infinity', undefined],
    ['NaN', undefined],
    ['5 seconds', undefined],
    ['soon 2030', undefined],
    ['2030', cap],
    ['2030-01-01T00:00:00Z', undefined],
    ['', undefined],
    ['Thu, 01 Jan 2026 00:00:05 GMT', 5000],
    ['Thursday, 01-Jan-26 00:00:05 GMT', 5000],
    ['Thu Jan  1 00:00:05 2026', 5000],
    ['Fri, 01 Jan 2100 00:00:00 GMT', cap],
    ['Wed, 31 Dec 2025 23:59:59 GMT', undefined],
    ['Thu, 01 Jan 1970 00:00:00 GMT', undefined],
    ['Thu, 31 Feb 2026 00:00:05 GMT', undefined],
    ['Thu, 01 Jan 2026 00:00:05 GMT; junk', undefined],
    ['Thu, 01 Jan 2026 25:00:00 GMT', undefined],
  ]
  for (const [header, expected] of cases) {
    assert.equal(parseRetryAfter(header, now, cap), expected, JSON.stringify(header.slice(0, 40)))
  }
  assert.equal(parseRetryAfter(undefined, now, cap), undefined)
})

test(`${RUNS} arbitrary header strings give undefined or a delay within [0, cap]`, () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^-?\d{1,30}(\.\d{0,5})?$/)),
      (header) => {
        const delay = parseRetryAfter(header, now, cap)
        assert.ok(
          delay === undefined || (Number.isInteger(delay) && delay >= 0 && delay <= cap),
          String(delay),
        )
        if (/^\s*\d+(\.\d+)?\s*$/.test(header))
          assert.equal(delay, Math.min(Math.round(Number(header) * 1000), cap))
        if (/^\s*-/.test(header)) assert.equal(delay, undefined)
      },
    ),
    { numRuns: RUNS },
  )
})

test(`${RUNS} HTTP dates: the future is honoured and clamped, the past gives undefined`, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -10 * 365 * 86_400, max: 10 * 365 * 86_400 }),
      fc.constantFrom('imf', 'rfc850', 'asctime'),
      (offsetSeconds, form) => {
        const at = new Date(now + offsetSeconds * 1000)
        const header = httpDate(at, form)
        const delay = parseRetryAfter(header, now, cap)
        if (offsetSeconds < 0) assert.equal(delay, undefined, header)
        else assert.equal(delay, Math.min(offsetSeconds * 1000, cap), header)
      },
    ),
    { numRuns: RUNS },
  )
})

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** `at` written in one of the HTTP-date forms. */
function httpDate(at: Date, form: string): string {
  const two = (n: number) => String(n).padStart(2, '0')
  const time = `${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())}`
  const day = DAYS[at.getUTCDay()] as string
  const month = MONTHS[at.getUTCMonth()] as string
  if (form === 'imf') return at.toUTCString()
  if (form === 'rfc850')
    return `${day}, ${two(at.getUTCDate())}-${month}-${two(at.getUTCFullYear() % 100)} ${time} GMT`
  return `${day.slice(0, 3)} ${month} ${String(at.getUTCDate()).padStart(2, ' ')} ${time} ${at.getUTCFullYear()}`
}
