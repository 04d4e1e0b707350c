/**
 * The committed corpus of hostile source responses (`test/fixtures/hostile/*.json`, one case a file,
 * with its expected outcome) and a real HTTP server that plays them, or generated cases, to the
 * producer. Bodies are described rather than stored when they are large: parts that repeat, raw
 * bytes, gzip.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { gzipSync } from 'node:zlib'
import type { EntityName } from '../../src/domain/records.ts'
import type { HostileResponse } from './hostile-source.ts'

/** A piece of a described body. */
export type BodyPart =
  | string
  | { readonly repeat: string; readonly times: number }
  | { readonly bytes: readonly number[] }
  | { readonly json: unknown }

/** One answer of a corpus case. */
export interface CorpusResponse {
  readonly status?: number
  readonly headers?: Readonly<Record<string, string>>
  /** The body, as JSON or as parts; an empty body when both are absent. */
  readonly json?: unknown
  readonly body?: readonly BodyPart[]
  /** Gzip the assembled body (the headers say what they say). */
  readonly gzip?: boolean
  /** Send without Content-Length (chunked), so only the streaming size check can catch it. */
  readonly chunked?: boolean
  /** Slow-loris: send the body in `slowChunks` pieces with this pause before each. */
  readonly slowBodyMs?: number
  readonly slowChunks?: number
}

/** What must come of a case. */
export type CorpusExpectation =
  | { readonly error: string; readonly message: string }
  | {
      /** Ids published, in any order. */
      readonly published: readonly string[]
      /** Dead-lettered records: the key (null for a record without a usable id) and a reason pattern. */
      readonly dead: ReadonlyArray<{
        readonly key: string | null
        readonly reason: string
        /** The payload was not kept whole in the DLQ, for this reason (a pattern). */
        readonly truncated?: string
      }>
      /** Retries within the cycle. */
      readonly retries?: number
      /** Each retry waited at most this long (an ignored `Retry-After`: the backoff, base 50 ms). */
      readonly retriesAtMostMs?: number
      /** Each retry waited exactly this long (a clamped `Retry-After`). */
      readonly retryDelayMs?: number
    }

/** One corpus file. */
export interface CorpusCase {
  readonly name: string
  readonly about: string
  readonly entity: EntityName
  /** The nth request gets the nth answer; the last one repeats. */
  readonly responses: readonly CorpusResponse[]
  /** Every answer links to a next page, forever (after the answers above). */
  readonly endless?: boolean
  readonly expect: CorpusExpectation
}

const corpusDir = new URL('../fixtures/hostile/', import.meta.url)

/** Every case of the corpus, by file name. */
export function loadCorpus(): CorpusCase[] {
  return readdirSync(corpusDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({
      name: file.replace(/\.json$/, ''),
      ...(JSON.parse(readFileSync(new URL(file, corpusDir), 'utf8')) as Omit<CorpusCase, 'name'>),
    }))
}

/** The bytes of a described body. */
export function bodyOf(response: CorpusResponse): Buffer {
  const parts: Buffer[] = []
  if (response.json !== undefined) parts.push(Buffer.from(JSON.stringify(response.json)))
  for (const part of response.body ?? []) {
    if (typeof part === 'string') parts.push(Buffer.from(part))
    else if ('repeat' in part) parts.push(Buffer.from(part.repeat.repeat(part.times)))
    else if ('bytes' in part) parts.push(Buffer.from(part.bytes))
    else parts.push(Buffer.from(JSON.stringify(part.json)))
  }
  const body = Buffer.concat(parts)
  return response.gzip ? gzipSync(body) : body
}

/** How a request is answered: a hostile response with its delivery quirks. */
export interface Answer extends HostileResponse {
  readonly chunked?: boolean | undefined
  readonly slowBodyMs?: number | undefined
  readonly slowChunks?: number | undefined
}

/** The answer of a corpus response. */
export function answerOf(response: CorpusResponse): Answer {
  return {
    status: response.status ?? 200,
    headers: response.headers ?? { 'content-type': 'application/json' },
    body: bodyOf(response),
    chunked: response.chunked,
    slowBodyMs: response.slowBodyMs,
    slowChunks: response.slowChunks,
  }
}

async function send(res: ServerResponse, answer: Answer): Promise<void> {
  const headers: Record<string, string> = { ...answer.headers }
  if (!answer.chunked && answer.slowBodyMs === undefined)
    headers['content-length'] = String(answer.body.length)
  res.writeHead(answer.status, headers)
  if (answer.slowBodyMs === undefined) {
    res.end(answer.body)
    return
  }
  const pieces = answer.slowChunks ?? 5
  const size = Math.ceil(answer.body.length / pieces)
  for (let i = 0; i < pieces && !res.destroyed; i++) {
    await sleep(answer.slowBodyMs)
    res.write(answer.body.subarray(i * size, (i + 1) * size))
  }
  res.end()
}

/** A real HTTP server answering each path with what `route` says (404 when it says nothing). */
export interface HostileServer {
  readonly url: string
  /** Requests seen per path (without the query). */
  readonly requests: Map<string, number>
  close(): Promise<void>
}

/** Starts a server on 127.0.0.1; `route` gets the path, the query and the request's number on its path. */
export async function startHostileServer(
  route: (path: string, query: URLSearchParams, nth: number, req: IncomingMessage) => Answer | undefined,
): Promise<HostileServer> {
  const requests = new Map<string, number>()
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const nth = requests.get(url.pathname) ?? 0
    requests.set(url.pathname, nth + 1)
    const answer = route(url.pathname, url.searchParams, nth, req)
    if (answer === undefined) {
      res.writeHead(404).end()
      return
    }
    send(res, answer).catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
