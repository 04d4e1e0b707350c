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

async function scan(message: Extract<ToWorker, { kind: 'scan' }>): Promise<void> {
  const { session, source, settings } = message
  const abort = new AbortController()
  aborts.set(session, abort)
  try {
    const end = await scanListing(
      { ...source, url: new URL(source.url) },
      settings,
      {
        dispatcher: agentFor(settings.timeoutMs),
        signal: abort.signal,
        onRetry: (info) => post({ kind: 'retry', session, info }),
      },
      (page) => {
        const result = toWire(page)
        const { keyLengths, envelopes, ends } = result.records
        post({ kind: 'page', session, result }, [keyLengths, envelopes, ends].map(ownBuffer))
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
