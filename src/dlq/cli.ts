/**
 * `pipeline dlq list|show|replay` (I/O): the operator's view of the dead letter queue. Tables and
 * summaries go to stdout (`--json` for scripts), prompts and progress to stderr.
 */
import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import { createClient } from 'redis'
import { type Config, loadConfig } from '../config/env.ts'
import { describeError, ErrorCodes, PipelineError } from '../errors.ts'
import type { MessagePublisher } from '../kafka/ports.ts'
import { createProducer, publish } from '../kafka/producer.ts'
import type { Redis } from '../state/redis.ts'
import { parseFilter, type RawDlqFilter } from './filter.ts'
import { formatItem, formatSummary, formatTable } from './format.ts'
import { DlqOperations } from './operations.ts'
import { formatPlan, formatProgress, formatReplayReport, parseRate, planActs } from './replay-plan.ts'

const USAGE = `usage: pipeline dlq <list|show|replay> [options]

  pipeline dlq list [filters] [--json]
      the entries: offset, time, stage, key, attempts, error; then a count by stage and error class
  pipeline dlq show <offset> [--json]
      one whole entry
  pipeline dlq replay [filters] [--dry-run] [--rate N/s] [--yes] [--json]
      deliver-stage entries: re-request the view (its current state is delivered, idempotently);
      source/deserialize/validate entries: validate again, publish to the source topic if valid now;
      entries still failing stay, with the reason. Replayed entries are recorded: a second replay skips them.

filters (all optional, combined with AND):
  --stage <s>[,<s>]   source, deserialize, validate, deliver
  --since <t>         failed at or after t: ISO 8601 (2026-02-04, 2026-02-04T18:00Z) or an age (30m, 2h, 7d)
  --until <t>         failed before t (same forms)
  --key <k>           record id or view id; * matches anything (customer:*)
  --error <text>      text in the error class or message, or the HTTP status (400)

options:
  --dry-run           show what a replay would do; change nothing
  --rate <n>          entries acted on per second (10/s, 120/m; 0: unlimited); default 50/s
  --yes, -y           replay without asking (required when stdin is not a terminal)
  --json              machine-readable output
`

const options = {
  stage: { type: 'string', multiple: true },
  since: { type: 'string' },
  until: { type: 'string' },
  key: { type: 'string' },
  error: { type: 'string' },
  json: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  rate: { type: 'string', default: '50/s' },
  yes: { type: 'boolean', short: 'y', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

type Parsed = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values']

function usageError(message: string): PipelineError {
  return new PipelineError(ErrorCodes.USAGE, `${message}; run \`pipeline dlq help\` for the usage`)
}

function rawFilter(values: Parsed): RawDlqFilter {
  return {
    stage: values.stage,
    since: values.since,
    until: values.until,
    key: values.key,
    error: values.error,
  }
}

/** A Redis client for a short-lived command: one connection attempt, no reconnect loop. */
async function openRedis(url: string): Promise<Redis> {
  const client = createClient({ url, socket: { connectTimeout: 5000, reconnectStrategy: false } })
  // A failure is reported by connect() or the command that hits it; the event alone must not crash.
  client.on('error', () => {})
  await client.connect()
  return client
}

/** Line width of the table when stdout is not a terminal (a pager or a file): room for the messages. */
const PIPED_WIDTH = 200

const print = (text: string) => process.stdout.write(`${text}\n`)

/** Runs `pipeline dlq <args>` and resolves to the exit code. */
export async function runDlqCommand(args: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true })
  } catch (error) {
    throw usageError((error as Error).message.replace(/\.$/, ''))
  }
  const { values, positionals } = parsed
  const [sub, ...rest] = positionals
  if (values.help || sub === undefined || sub === 'help') {
    process.stdout.write(USAGE)
    return sub === undefined && !values.help ? 2 : 0
  }
  if (sub !== 'list' && sub !== 'show' && sub !== 'replay')
    throw usageError(`unknown dlq command ${JSON.stringify(sub)}`)
  if (sub === 'show' ? rest.length !== 1 : rest.length > 0)
    throw usageError(
      sub === 'show' ? 'dlq show takes one offset' : `unexpected argument ${JSON.stringify(rest[0])}`,
    )

  const config = loadConfig()
  const filter = parseFilter(rawFilter(values))
  const rate = parseRate(values.rate)
  if (sub === 'replay') return replay(config, values, filter, rate)

  let redis: Redis | undefined
  try {
    redis = await openRedis(config.REDIS_URL)
  } catch (error) {
    console.error(`pipeline dlq: replay status unknown (Redis: ${describeError(error)})`)
  }
  try {
    const ops = new DlqOperations({ config, redis })
    if (sub === 'show') {
      const shown = await ops.show(rest[0] ?? '')
      print(values.json ? JSON.stringify(shown, null, 2) : formatItem(shown.item, shown.replayed))
      return 0
    }
    const listing = await ops.list(filter)
    if (values.json) print(JSON.stringify(listing, null, 2))
    else {
      if (listing.rows.length > 0)
        print(formatTable(listing.rows, { width: process.stdout.columns ?? PIPED_WIDTH }))
      print(formatSummary(listing.summary, listing.topic))
    }
    return 0
  } finally {
    await redis?.close().catch(() => {})
  }
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await prompt.question(`${question} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    prompt.close()
  }
}

async function replay(
  config: Config,
  values: Parsed,
  filter: ReturnType<typeof parseFilter>,
  rate: number,
): Promise<number> {
  const dryRun = values['dry-run']
  if (!dryRun && !values.yes && !process.stdin.isTTY) {
    throw new PipelineError(
      ErrorCodes.DLQ_CONFIRMATION_REQUIRED,
      'refusing to replay without --yes: stdin is not a terminal to confirm on (add --yes, or --dry-run to look first)',
    )
  }
  const redis = await openRedis(config.REDIS_URL)
  const producer = dryRun ? undefined : createProducer(config, 'dlq-replay')
  const publisher: MessagePublisher | undefined = producer && {
    send: (messages) => publish(producer, messages),
  }
  try {
    const ops = new DlqOperations({ config, redis, publisher })
    const prepared = await ops.prepareReplay(filter)
    if (!dryRun && !values.yes) {
      console.error(formatPlan(prepared.plan))
      if (!planActs(prepared.plan)) {
        console.error('nothing to replay')
      } else if (!(await confirm(`Replay them from ${prepared.topic}?`))) {
        console.error('not replayed')
        return 1
      }
    }
    const tty = process.stderr.isTTY === true && !values.json
    const report = await ops.replay(prepared, {
      dryRun,
      ratePerSecond: rate,
      ...(tty
        ? {
            onProgress: (done, total, counts) =>
              process.stderr.write(
                `\r\x1b[K${formatProgress(done, total, counts, process.stderr.columns ?? 80)}`,
              ),
          }
        : {}),
    })
    if (tty) process.stderr.write('\r\x1b[K')
    print(values.json ? JSON.stringify(report, null, 2) : formatReplayReport(report))
    return (report.counts.error ?? 0) > 0 ? 1 : 0
  } finally {
    await producer?.close().catch(() => {})
    await redis.close().catch(() => {})
  }
}
