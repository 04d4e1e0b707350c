/**
 * A scan worker thread: runs {@link PageScan} for the sessions the main thread opens on it, one
 * message per page in and two out (where the listing goes on, as soon as the page is parsed; then
 * its packed records). The protocol lives in scan-protocol.ts.
 */
import { parentPort } from 'node:worker_threads'
import { PipelineError } from '../errors.ts'
import { PageScan } from './page-scan.ts'
import { type FromWorker, type ToWorker, toWire } from './scan-protocol.ts'

const port = parentPort
if (port === null) throw new Error('scan-worker.ts runs as a worker thread only')

const ownBuffer = (view: ArrayBufferView) => view.buffer as ArrayBuffer

const sessions = new Map<number, PageScan>()
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer)

port.on('message', (message: ToWorker) => {
  switch (message.kind) {
    case 'open':
      sessions.set(message.session, new PageScan(message.spec))
      return
    case 'close':
      sessions.delete(message.session)
      return
    case 'page': {
      const { session, page } = message
      const scan = sessions.get(session)
      if (scan === undefined) {
        post({ kind: 'failed', session, page, message: `scan session ${session} is not open` })
        return
      }
      try {
        const read = scan.read(message.url, message.body)
        if (!read.ok) {
          post({ kind: 'read', session, page, ok: false, code: read.code, message: read.message })
          return
        }
        post({ kind: 'read', session, page, ok: true, next: read.next })
        const result = toWire(read.records())
        const { keyLengths, envelopes, ends } = result.records
        post({ kind: 'records', session, page, result }, [keyLengths, envelopes, ends].map(ownBuffer))
      } catch (error) {
        const code = error instanceof PipelineError ? error.code : undefined
        post({ kind: 'failed', session, page, code, message: (error as Error).message ?? String(error) })
      }
    }
  }
})
