/**
 * The logger keeps secrets out of every line: by field name (credentials a caller or a library error
 * attaches) and by value (the configured secrets, wherever they appear: message, error, stack).
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { createLogger } from '../../src/observability/logger.ts'
import { REDACTED, redactUrl, secretNeedles } from '../../src/observability/redact.ts'

function capture(secrets: Array<string | undefined> = []) {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  const logger = createLogger({ service: 't', level: 'debug', pretty: false, destination, secrets })
  return { logger, lines }
}

test('configured secret values are replaced in messages, fields, errors and stacks', () => {
  const token = 'tok-3f9a8b7c6d5e'
  const password = 'pa"ss\\word-42'
  const { logger, lines } = capture([token, password, undefined])
  logger.info(`calling with ${token}`)
  logger.warn({ detail: { nested: `x${token}y` } }, 'nested')
  logger.error({ err: new Error(`refused ${password} and ${token}`) }, 'failed')
  assert.equal(lines.length, 3)
  for (const line of lines) {
    assert.ok(!line.includes(token) && !line.includes('ss\\\\word-42'), line)
    assert.ok(line.includes(REDACTED), line)
    JSON.parse(line)
  }
})

test('credential fields are censored by name, whatever their value', () => {
  const { logger, lines } = capture()
  logger.info(
    {
      headers: { authorization: 'Bearer abc' },
      request: { headers: { authorization: 'Basic x' } },
      password: 'p',
    },
    'request',
  )
  const line = JSON.parse(lines[0] ?? '{}')
  assert.equal(line.headers.authorization, REDACTED)
  assert.equal(line.request.headers.authorization, REDACTED)
  assert.equal(line.password, REDACTED)
})

test('a URL secret censors only its password; short values censor nothing', () => {
  assert.deepEqual(secretNeedles(['redis://user:p%40ssword1@cache:6379/0']).sort(), [
    'p%40ssword1',
    'p@ssword1',
  ])
  assert.deepEqual(secretNeedles(['redis://127.0.0.1:6379']), [])
  assert.deepEqual(secretNeedles(['abc']), [])
  const { logger, lines } = capture(['redis://127.0.0.1:6379', 'abc'])
  logger.info('connected to redis://127.0.0.1:6379 at abc')
  assert.match(lines[0] ?? '', /connected to redis:\/\/127\.0\.0\.1:6379 at abc/)
})

test('redactUrl hides a URL password and leaves other URLs alone', () => {
  assert.equal(redactUrl('redis://user:secret-pw@host:6379/1'), 'redis://user:***@host:6379/1')
  assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
  assert.equal(redactUrl('not a url'), 'not a url')
})
