/**
 * A real Redis for local runs and tests: the system `redis-server` on 127.0.0.1 with its own data
 * folder and append-only persistence, so a restart keeps its state.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { type ManagedChild, reapStale, spawnChild } from './child.ts'
import { assertPortFree } from './ports.ts'
import { awaitChildReady } from './wait.ts'

/** Options of {@link startRedis}. */
export interface RedisOptions {
  readonly dataDir: string
  readonly port?: number
  readonly readyTimeoutMs?: number
}

/** A running local Redis. */
export interface LocalRedis {
  readonly url: string
  readonly port: number
  readonly child: ManagedChild
  stop(): Promise<void>
}

function redisServerPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

/**
 * Finds `redis-server`, installing the Debian package when it is missing and we run as root.
 *
 * @throws {PipelineError} `PIPELINE_INFRA_REDIS_MISSING` with the command to run otherwise
 */
export function ensureRedisServer(): string {
  const existing = redisServerPath()
  if (existing) return existing
  const hint = 'install it (sudo apt-get install -y redis-server) or set REDIS_URL to a running Redis'
  if (
    process.getuid?.() !== 0 ||
    spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0
  ) {
    throw new PipelineError(ErrorCodes.INFRA_REDIS_MISSING, `redis-server was not found: ${hint}`)
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq redis-server'], {
    env,
    encoding: 'utf8',
  })
  const installed = redisServerPath()
  if (install.status !== 0 || !installed) {
    throw new PipelineError(
      ErrorCodes.INFRA_REDIS_MISSING,
      `redis-server was not found and apt-get could not install it (${install.stderr.trim().split('\n').pop() ?? ''}): ${hint}`,
    )
  }
  return installed
}

/** Resolves true when a Redis at 127.0.0.1:`port` answers PING with PONG. */
export function redisAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host })
    const finish = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => finish(false))
    socket.once('error', () => finish(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG')))
  })
}

/**
 * Starts `redis-server` on 127.0.0.1:`port` and resolves once it answers PING.
 *
 * @throws {PipelineError} on a missing binary, a busy port, or no answer within the timeout
 */
export async function startRedis(options: RedisOptions): Promise<LocalRedis> {
  const port = options.port ?? 6379
  await assertPortFree(
    port,
    'the local Redis',
    'REDIS_PORT to another port, or REDIS_URL to use a running Redis',
  )
  const binary = ensureRedisServer()
  mkdirSync(options.dataDir, { recursive: true })
  const pidFile = join(options.dataDir, 'redis.pid')
  await reapStale(pidFile, 'redis-server')
  const child = spawnChild({
    name: 'redis',
    command: binary,
    args: [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      options.dataDir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ],
    logFile: join(options.dataDir, 'redis.log'),
    pidFile,
  })
  await awaitChildReady(child, () => redisAnswers(port), {
    what: `Redis on 127.0.0.1:${port}`,
    timeoutMs: options.readyTimeoutMs ?? 20_000,
    intervalMs: 100,
  })
  return { url: `redis://127.0.0.1:${port}`, port, child, stop: () => child.stop(10_000) }
}
