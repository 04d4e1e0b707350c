/**
 * A source page's body from bytes to JSON (pure). Kept apart from the HTTP client: scan workers
 * parse pages and need none of it.
 */
import { isUtf8 } from 'node:buffer'
import { ErrorCodes, oneLine, PipelineError } from '../errors.ts'

/**
 * Parses a response body (pure). Invalid UTF-8 fails the page with `SOURCE_BAD_ENCODING` rather
 * than being patched with U+FFFD: a silently altered id or name would be published as if the source
 * had said it. Text that is not JSON fails it with `SOURCE_NOT_JSON`; either way the message is one
 * line and names the URL.
 *
 * @throws {PipelineError} `SOURCE_BAD_ENCODING` or `SOURCE_NOT_JSON`
 */
export function parseBody(url: URL, raw: Uint8Array): unknown {
  if (!isUtf8(raw)) {
    throw new PipelineError(
      ErrorCodes.SOURCE_BAD_ENCODING,
      `${url.href} answered a body of ${raw.length} bytes that is not valid UTF-8`,
    )
  }
  try {
    return JSON.parse(utf8.decode(raw))
  } catch (error) {
    throw new PipelineError(
      ErrorCodes.SOURCE_NOT_JSON,
      `${url.href} answered invalid JSON: ${oneLine((error as Error).message, 200)}`,
    )
  }
}

// Non-fatal is fine here: the bytes were checked by isUtf8 first. It strips a leading BOM.
const utf8 = new TextDecoder('utf-8')
