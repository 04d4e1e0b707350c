/**
 * A scan worker thread: runs the scan loop (fetch, parse, validate, hash) of the scans the main
 * thread sends it, and posts each page's records as soon as they are worked through. The
 * protocol lives in scan-protocol.ts.
 */
import { parentPort } from 'node:worker_threads'
import { PipelineError } from '../errors.ts'
import { sourceAgent } from './http-page.ts'
import { scanListing } from './scan.ts'
import { type FromWorker, type ToWorker, toWire } from './scan-protocol.ts'

const port = parentPort
if (port === null) throw new Error('scan-worker.ts runs as a worker thread only')

const aborts = new Map<number, AbortController>()
const agents = new Map<number, ReturnType<typeof sourceAgent>>()
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer)
const ownBuffer = (view: ArrayBufferView) => view.buffer as ArrayBuffer

/** One HTTP agent per timeout setting (in practice one), kept alive between scans like the service's. */
function agentFor(timeoutMs: number) {
  let agent = agents.get(timeoutMs)
  if (agent === undefined) {
    agent = sourceAgent(timeoutMs)
    agents.set(timeoutMs, agent)
  }
  return agent
}

/** An array's memory to transfer: its own, or a copy when it shares memory (Node's small-buffer pool). */
function transferable(view: Uint8Array): Uint8Array {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view : new Uint8Array(view)
}

async function scan(message: Extract<ToWorker, { kind: 'scan' }>): Promise<void> {
  const { session, source, settings, part, split } = message
  const abort = new AbortController()
  aborts.set(session, abort)
  // Only pages of a listing shared with another thread can hold an id the other one read too: the
  // main thread needs their bodies to dead-letter it; other pages cross without theirs.
  let shared = part !== undefined
  try {
    const end = await scanListing(
      { ...source, url: new URL(source.url) },
      settings,
      {
        dispatcher: agentFor(settings.timeoutMs),
        signal: abort.signal,
        onRetry: (info) => post({ kind: 'retry', session, info }),
      },
      (page, index) => {
        const body = shared && page.body !== undefined ? transferable(page.body) : undefined
        const result = toWire({ ...page, body })
        const { keyLengths, envelopes, ends, positions } = result.records
        const transfer = [keyLengths, envelopes, ends, positions, ...(body ? [body] : [])].map(ownBuffer)
        post({ kind: 'page', session, index, result }, transfer)
      },
      {
        part,
        split: split
          ? (theirs) => {
              shared = true
              post({ kind: 'delegate', session, part: theirs })
            }
          : undefined,
      },
    )
    post({ kind: 'end', session, end })
  } catch (error) {
    const code = error instanceof PipelineError ? error.code : undefined
    post({ kind: 'failed', session, code, message: (error as Error).message ?? String(error) })
  } finally {
    aborts.delete(session)
  }
}

port.on('message', (message: ToWorker) => {
  if (message.kind === 'scan') void scan(message)
  else aborts.get(message.session)?.abort()
})
// Every module is loaded: the pool's start-up is over.
post({ kind: 'ready' })
