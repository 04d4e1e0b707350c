/**
 * The local launcher's bad input: each failure ends with one clear line naming the cause and what
 * to do, and leaves no process behind.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { startKafka } from '../../src/infra/kafka.ts'
import { startPrism } from '../../src/infra/prism.ts'
import { startRedis } from '../../src/infra/redis.ts'

const dir = mkdtempSync(join(tmpdir(), 'launcher-errors-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Processes whose command line names `path` (our JVM and redis-server carry their data dir). */
function processesUsing(path: string): string {
  const found = spawnSync('pgrep', ['-f', '-a', path], { encoding: 'utf8' }).stdout
  return found
    .split('\n')
    .filter((line) => line && !line.includes('pgrep'))
    .join('\n')
}

test('a busy port is refused with one line naming the port and the way out, for every part', async () => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  const address = blocker.address()
  assert.ok(address && typeof address === 'object')
  try {
    for (const start of [
      () => startKafka({ dataDir: join(dir, 'kafka'), port: address.port }),
      () => startRedis({ dataDir: join(dir, 'redis'), port: address.port }),
      () => startPrism({ logDir: dir, port: address.port }),
    ]) {
      await assert.rejects(start(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'PIPELINE_INFRA_PORT_BUSY')
        assert.match(
          error.message,
          new RegExp(`^Port ${address.port} for .+ is already in use: .+set [A-Z_]+`),
        )
        assert.ok(!error.message.includes('\n'), 'one line')
        return true
      })
    }
  } finally {
    blocker.close()
  }
  assert.equal(processesUsing(dir), '', 'no child process left behind')
})

test('without Java, starting Kafka ends with one line saying what to install, and nothing runs', () => {
  // A fresh cache forces the download path, where Java and Maven are checked first.
  const script = `
    const { startKafka } = await import(${JSON.stringify(new URL('../../src/infra/kafka.ts', import.meta.url).href)})
    try { await startKafka({ dataDir: ${JSON.stringify(join(dir, 'nojava'))}, port: 0 }) }
    catch (error) { console.log(error.code + ' ' + error.message); process.exit(3) }`
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PATH: '/nonexistent', PIPELINE_CACHE_DIR: join(dir, 'cache') },
    encoding: 'utf8',
  })
  assert.equal(result.status, 3, result.stderr)
  const line = result.stdout.trim()
  assert.match(line, /^PIPELINE_INFRA_JAVA_MISSING Java 17\+ is needed .+install .+KAFKA_BROKERS/)
  assert.equal(line.split('\n').length, 1)
})

test('a broker that is not ready in time is stopped and reported with its log', async () => {
  await assert.rejects(
    startKafka({ dataDir: join(dir, 'slow'), port: 0, readyTimeoutMs: 200 }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'PIPELINE_INFRA_NOT_READY')
      assert.match(error.message, /Kafka on 127\.0\.0\.1:\d+ was not ready within 0 s; see .+broker\.log/)
      return true
    },
  )
  assert.equal(processesUsing(join(dir, 'slow')), '', 'the JVM was stopped')
})
