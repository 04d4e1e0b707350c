/**
 * Each `pipeline <service>` loads its own module graph and nothing else: every module a long-running
 * service imports stays in its heap (source text, bytecode, the library's import-time state), so
 * development tools, the local launcher or another service's code in that graph are memory the service
 * pays for all its life (bench/README.md, consumer, "Memory"). Each service is started with an invalid
 * METRICS_PORT: it imports its whole static graph, then stops at configuration, before any I/O.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const recorder = fileURLToPath(new URL('../fixtures/record-modules.ts', import.meta.url))

/** The module URLs `pipeline <command>` loads before it stops at its configuration. */
function modulesOf(command: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'service-modules-'))
  try {
    const file = join(dir, 'modules.txt')
    const run = spawnSync(process.execPath, ['--import', recorder, join(root, 'src/cli.ts'), command], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...process.env,
        METRICS_PORT: 'not-a-port',
        MOCK_ANALYTICS_PORT: 'not-a-port',
        RECORD_MODULES_TO: file,
      },
    })
    assert.equal(run.status, 1, `pipeline ${command} should stop at its configuration:\n${run.stderr}`)
    assert.match(run.stderr, /PORT/, `pipeline ${command} should name the invalid port`)
    return readFileSync(file, 'utf8').split('\n')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** What no long-running service may load, by the part of the URL that gives it away. */
const foreign: ReadonlyArray<readonly [string, string]> = [
  ['/src/simulator/', 'the source simulator'],
  ['/src/infra/', 'the local launcher (Kafka, Redis, Prism, Prometheus)'],
  ['/src/services/local-stack.ts', 'the local stack (`pipeline up`)'],
  ['/src/dlq/cli.ts', 'the DLQ command line'],
  ['/node_modules/pino-pretty/', 'pino-pretty (only a terminal gets pretty logs)'],
  ['/node_modules/@stoplight/', 'Prism'],
  ['/node_modules/typescript/', 'the TypeScript compiler'],
  ['/node_modules/yaml/', 'a dev dependency (yaml)'],
  ['/node_modules/fast-check/', 'a dev dependency (fast-check)'],
]

/** Each service's own composition root, which no other service may load. */
const roots: Record<string, string> = {
  consumer: '/src/services/consumer/service.ts',
  producer: '/src/services/producer/service.ts',
  'mock-analytics': '/src/services/mock-analytics/service.ts',
}

for (const [command, own] of Object.entries(roots)) {
  test(`pipeline ${command} loads its own service and no other service, tool or launcher`, () => {
    const modules = modulesOf(command)
    // The recorder saw the service's graph, so an absence below means something.
    assert.ok(
      modules.some((url) => url.endsWith(own)),
      `the recorder should have seen ${own}`,
    )
    for (const [part, what] of foreign) {
      const hit = modules.find((url) => url.includes(part))
      assert.equal(hit, undefined, `pipeline ${command} loads ${what}: ${hit}`)
    }
    for (const [other, path] of Object.entries(roots)) {
      if (other === command) continue
      const hit = modules.find((url) => url.endsWith(path))
      assert.equal(hit, undefined, `pipeline ${command} loads the ${other} service: ${hit}`)
    }
  })
}
