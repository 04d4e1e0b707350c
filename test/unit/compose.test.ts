/**
 * Docker cannot run where the tests run, so `deploy/docker-compose.yml`, the Dockerfile and the files they
 * mount are checked statically: each rule below is one `docker compose up --build` would otherwise
 * reveal late (a missing mount, an unknown variable, a dependency that never turns healthy).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { envVarNames } from '../../src/config/env.ts'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const root = fileURLToPath(new URL('../../', import.meta.url))
const composePath = resolve(root, 'deploy/docker-compose.yml')
const composeDir = dirname(composePath)

function readYaml(path: string): Json {
  // Compose honours YAML merge keys (`<<: *anchor`), so the parser must too.
  return parse(readFileSync(path, 'utf8'), { merge: true }) as Json
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function obj(value: Json | undefined, where: string): JsonObject {
  assert.ok(isObject(value), `${where} should be a mapping`)
  return value
}

const compose = obj(readYaml(composePath), 'the compose file')
const services = obj(compose.services, 'services')
const serviceNames = Object.keys(services)

function service(name: string): JsonObject {
  return obj(services[name], `service ${name}`)
}

/** The services built from the repository's Dockerfile: they run `pipeline <command>`. */
const ownServices = ['analytics', 'producer', 'consumer'] as const
const cliCommands = new Set(['producer', 'consumer', 'mock-analytics'])

/** Published host port → the service that must publish it. 9092 is optional (Kafka may stay internal). */
const documentedPorts: Record<number, string> = {
  4010: 'mock-api',
  4020: 'analytics',
  9000: 'consumer',
  9001: 'producer',
  9090: 'prometheus',
  3000: 'grafana',
}
const optionalPorts: Record<number, string> = { 9092: 'kafka' }

/** Reads `environment` in either compose form (mapping or `KEY=value` list). */
function environment(name: string): Map<string, string> {
  const env = service(name).environment
  const out = new Map<string, string>()
  if (env === undefined || env === null) return out
  if (Array.isArray(env)) {
    for (const entry of env) {
      const [key = '', ...value] = String(entry).split('=')
      out.set(key, value.join('='))
    }
    return out
  }
  for (const [key, value] of Object.entries(obj(env, `${name}.environment`)))
    out.set(key, String(value ?? ''))
  return out
}

interface PortMapping {
  readonly published: number | undefined
  readonly target: number
}

/** Reads `ports` in the short (`[ip:]host:container[/proto]`) and the long (`target`/`published`) form. */
function ports(name: string): PortMapping[] {
  const list = service(name).ports
  if (list === undefined) return []
  assert.ok(Array.isArray(list), `${name}.ports should be a list`)
  return list.map((entry) => {
    if (isObject(entry)) {
      const published = entry.published === undefined ? undefined : Number(entry.published)
      return { published, target: Number(entry.target) }
    }
    const parts = String(entry)
      .replace(/\/(tcp|udp)$/, '')
      .split(':')
    const target = Number(parts.at(-1))
    const published = parts.length >= 2 ? Number(parts.at(-2)) : undefined
    return { published, target }
  })
}

interface BindMount {
  readonly source: string
  readonly target: string
}

/** Bind mounts (host paths); named volumes are left out. */
function bindMounts(name: string): BindMount[] {
  const volumes = service(name).volumes
  if (volumes === undefined) return []
  assert.ok(Array.isArray(volumes), `${name}.volumes should be a list`)
  const mounts: BindMount[] = []
  for (const entry of volumes) {
    if (isObject(entry)) {
      if (entry.type === 'bind') mounts.push({ source: String(entry.source), target: String(entry.target) })
      continue
    }
    const [source = '', target = ''] = String(entry).split(':')
    if (source.startsWith('.') || source.startsWith('/')) mounts.push({ source, target })
  }
  return mounts
}

/** The healthcheck command as one string, whatever its form. */
function healthcheckCommand(name: string): string {
  const healthcheck = obj(service(name).healthcheck, `${name}.healthcheck`)
  const cmd = healthcheck.test
  return Array.isArray(cmd) ? cmd.map(String).join(' ') : String(cmd)
}

/** Parses `host:port` from a URL or a broker address in an environment value. */
function hostAndPort(value: string): { host: string; port: number } {
  if (/^[a-z]+:\/\//.test(value)) {
    const url = new URL(value)
    const fallback = url.protocol === 'https:' ? 443 : 80
    return { host: url.hostname, port: url.port === '' ? fallback : Number(url.port) }
  }
  const [host = '', port = ''] = value.split(':')
  return { host, port: Number(port) }
}

/** The container port a service listens on, from its own configuration. */
function listeningPorts(name: string): Set<number> {
  const found = new Set(ports(name).map((p) => p.target))
  const env = environment(name)
  for (const key of ['METRICS_PORT', 'MOCK_ANALYTICS_PORT']) {
    const value = env.get(key)
    if (value !== undefined) found.add(Number(value))
  }
  if (name === 'kafka') found.add(9092)
  if (name === 'redis') found.add(6379)
  return found
}

test('the expected services exist', () => {
  for (const name of [
    'kafka',
    'redis',
    'mock-api',
    'analytics',
    'producer',
    'consumer',
    'prometheus',
    'grafana',
  ]) {
    assert.ok(serviceNames.includes(name), `service ${name} is missing from deploy/docker-compose.yml`)
  }
})

test('every service has a build or an image with a pinned tag (not latest)', () => {
  for (const name of serviceNames) {
    const s = service(name)
    if (s.build !== undefined) continue
    assert.equal(typeof s.image, 'string', `${name} has neither build nor image`)
    const image = String(s.image)
    const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).split(':')[1]
    assert.ok(tag !== undefined && tag !== '', `${name} image ${image} has no tag: pin one`)
    assert.notEqual(tag, 'latest', `${name} image ${image} uses latest: pin a version`)
  }
})

test('the pipeline services are built from the repository with the Dockerfile', () => {
  for (const name of ownServices) {
    const build = service(name).build
    const context = typeof build === 'string' ? build : String(obj(build, `${name}.build`).context)
    assert.equal(resolve(composeDir, context), resolve(root), `${name} builds from the repository root`)
    const dockerfile =
      isObject(build) && typeof build.dockerfile === 'string' ? build.dockerfile : 'Dockerfile'
    assert.ok(existsSync(resolve(root, dockerfile)), `${name} builds with ${dockerfile}, which must exist`)
  }
})

test('the command of each pipeline service is a CLI subcommand', () => {
  const expected: Record<(typeof ownServices)[number], string> = {
    analytics: 'mock-analytics',
    producer: 'producer',
    consumer: 'consumer',
  }
  for (const name of ownServices) {
    const command = service(name).command
    const first = Array.isArray(command) ? command[0] : String(command).split(/\s+/)[0]
    assert.ok(
      cliCommands.has(String(first)),
      `${name} runs ${JSON.stringify(command)}, not a pipeline subcommand`,
    )
    assert.equal(first, expected[name], `${name} runs pipeline ${expected[name]}`)
  }
})

test('published ports are the documented ones, each on the right service', () => {
  const seen = new Map<number, string>()
  for (const name of serviceNames) {
    for (const { published, target } of ports(name)) {
      const port = published ?? target
      const owner = documentedPorts[port] ?? optionalPorts[port]
      assert.ok(owner !== undefined, `${name} publishes undocumented port ${port}`)
      assert.equal(owner, name, `port ${port} belongs to ${owner}, but ${name} publishes it`)
      assert.equal(target, port, `${name} maps ${port} to container port ${target}; keep them equal`)
      seen.set(port, name)
    }
  }
  for (const [port, name] of Object.entries(documentedPorts)) {
    assert.equal(seen.get(Number(port)), name, `${name} should publish port ${port}`)
  }
})

test('every service has a healthcheck, a restart policy and a memory limit', () => {
  for (const name of serviceNames) {
    const s = service(name)
    const healthcheck = obj(s.healthcheck, `${name}.healthcheck`)
    assert.notEqual(healthcheck.disable, true, `${name} disables its healthcheck`)
    const cmd = healthcheck.test
    assert.ok(
      (Array.isArray(cmd) && ['CMD', 'CMD-SHELL'].includes(String(cmd[0])) && cmd.length >= 2) ||
        (typeof cmd === 'string' && cmd.trim() !== ''),
      `${name}.healthcheck.test should be a CMD/CMD-SHELL list or a shell string, got ${JSON.stringify(cmd)}`,
    )
    // An unquoted ` : ` (as in `ok ? 0 : 1`) turns a list item into a mapping, which compose rejects.
    if (Array.isArray(cmd)) {
      for (const arg of cmd) {
        assert.equal(
          typeof arg,
          'string',
          `${name}.healthcheck.test has a non-string item ${JSON.stringify(arg)}`,
        )
      }
    }
    assert.ok(
      ['always', 'unless-stopped', 'on-failure'].includes(String(s.restart)),
      `${name} needs a restart policy (unless-stopped), got ${JSON.stringify(s.restart)}`,
    )
    const deployLimit = isObject(s.deploy)
      ? obj(obj(s.deploy.resources, 'resources').limits, 'limits').memory
      : undefined
    const limit = s.mem_limit ?? deployLimit
    assert.match(
      String(limit),
      /^\d+(\.\d+)?[kmg]b?$/i,
      `${name} needs a memory limit (mem_limit), got ${limit}`,
    )
  }
})

test('our services are probed on /healthz at the port they listen on', () => {
  for (const name of ownServices) {
    const command = healthcheckCommand(name)
    const match = /127\.0\.0\.1:(\d+)\/healthz/.exec(command)
    assert.ok(match, `${name} healthcheck should fetch http://127.0.0.1:<port>/healthz, got: ${command}`)
    assert.ok(
      listeningPorts(name).has(Number(match[1])),
      `${name} healthcheck probes ${match[1]}, not its port`,
    )
  }
})

test('every depends_on waits for service_healthy on a service that has a healthcheck', () => {
  const expected: Record<string, string[]> = {
    producer: ['kafka', 'redis', 'mock-api'],
    consumer: ['kafka', 'redis', 'analytics'],
    prometheus: ['producer', 'consumer'],
    grafana: ['prometheus'],
  }
  for (const name of serviceNames) {
    const dependsOn = service(name).depends_on
    if (dependsOn === undefined) {
      assert.equal(expected[name], undefined, `${name} should depend on ${expected[name]?.join(', ')}`)
      continue
    }
    const deps = obj(dependsOn, `${name}.depends_on (use the long form with condition)`)
    for (const [dep, spec] of Object.entries(deps)) {
      assert.ok(serviceNames.includes(dep), `${name} depends on unknown service ${dep}`)
      assert.equal(
        obj(spec, `${name}.depends_on.${dep}`).condition,
        'service_healthy',
        `${name} should wait for ${dep} with condition: service_healthy`,
      )
      assert.ok(isObject(service(dep).healthcheck), `${name} waits for ${dep}, which has no healthcheck`)
    }
    for (const dep of expected[name] ?? []) {
      assert.ok(dep in deps, `${name} should wait for ${dep} to be healthy`)
    }
  }
})

test('our services set only variables the config schema knows (src/config/env.ts)', () => {
  const known = new Set<string>(envVarNames)
  for (const name of ownServices) {
    for (const key of environment(name).keys()) {
      assert.ok(known.has(key), `${name} sets ${key}, which is not in envVarNames (src/config/env.ts)`)
    }
  }
})

test('our services bind their servers to all interfaces so other containers reach them', () => {
  assert.equal(environment('analytics').get('MOCK_ANALYTICS_HOST'), '0.0.0.0')
  assert.equal(environment('producer').get('METRICS_HOST'), '0.0.0.0')
  assert.equal(environment('consumer').get('METRICS_HOST'), '0.0.0.0')
  assert.equal(environment('producer').get('METRICS_PORT'), '9001', 'the producer serves metrics on 9001')
  assert.equal(environment('consumer').get('METRICS_PORT'), '9000', 'the consumer serves metrics on 9000')
})

test('addresses in our services name a compose service and the port it listens on', () => {
  const addressVars = ['KAFKA_BROKERS', 'REDIS_URL', 'CRM_BASE_URL', 'INVENTORY_BASE_URL', 'ANALYTICS_URL']
  for (const name of ownServices) {
    const env = environment(name)
    for (const key of addressVars) {
      const value = env.get(key)
      if (value === undefined) continue
      for (const address of value.split(',')) {
        const { host, port } = hostAndPort(address.trim())
        assert.ok(serviceNames.includes(host), `${name} ${key}=${value}: ${host} is not a compose service`)
        assert.ok(
          listeningPorts(host).has(port),
          `${name} ${key}=${value}: ${host} does not listen on ${port}`,
        )
      }
    }
  }
  const expected = [
    ['consumer', 'ANALYTICS_URL', 'http://analytics:4020/analytics/data'],
    ['producer', 'CRM_BASE_URL', 'http://mock-api:4010'],
    ['producer', 'INVENTORY_BASE_URL', 'http://mock-api:4010'],
    ['producer', 'KAFKA_BROKERS', 'kafka:9092'],
    ['consumer', 'KAFKA_BROKERS', 'kafka:9092'],
    ['producer', 'REDIS_URL', 'redis://redis:6379'],
    ['consumer', 'REDIS_URL', 'redis://redis:6379'],
  ] as const
  for (const [name, key, value] of expected) {
    assert.equal(environment(name).get(key), value, `${name} should set ${key}=${value}`)
  }
})

test('Kafka runs as a single KRaft node reachable as kafka:9092 with replication factors of 1', () => {
  const env = environment('kafka')
  assert.equal(env.get('KAFKA_PROCESS_ROLES'), 'broker,controller')
  assert.match(env.get('KAFKA_ADVERTISED_LISTENERS') ?? '', /PLAINTEXT:\/\/kafka:9092/)
  assert.equal(env.get('KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS'), '0')
  for (const key of [
    'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
    'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
  ]) {
    assert.equal(env.get(key), '1', `${key} must be 1 on a single node`)
  }
  assert.match(env.get('CLUSTER_ID') ?? '', /^[A-Za-z0-9_-]{22}$/, 'CLUSTER_ID is a base64url UUID')
})

test('files mounted from the repository exist', () => {
  let count = 0
  for (const name of serviceNames) {
    for (const { source } of bindMounts(name)) {
      const path = isAbsolute(source) ? source : resolve(composeDir, source)
      assert.ok(path.startsWith(root), `${name} mounts ${source}, outside the repository`)
      assert.ok(existsSync(path), `${name} mounts ${source}, which does not exist (${path})`)
      count++
    }
  }
  assert.ok(count >= 3, 'the OpenAPI spec, prometheus.yml and Grafana provisioning are mounted')
})

test('Prism serves the repository spec it has mounted', () => {
  const command = service('mock-api').command
  assert.ok(Array.isArray(command), 'mock-api.command should be a list')
  assert.equal(command[0], 'mock', 'Prism runs `mock`')
  const document = command.map(String).find((arg) => arg.endsWith('.yaml') || arg.endsWith('.yml'))
  assert.ok(document, 'mock-api.command names the spec')
  const mount = bindMounts('mock-api').find(
    (m) => document === m.target || document.startsWith(`${m.target}/`),
  )
  assert.ok(mount, `${document} is not inside a bind mount of mock-api`)
  const onHost = resolve(composeDir, mount.source, document.slice(mount.target.length).replace(/^\//, ''))
  assert.equal(onHost, resolve(root, 'openapi/crm-inventory.yaml'), 'Prism serves openapi/crm-inventory.yaml')
  assert.ok(command.includes('0.0.0.0'), 'Prism listens on all interfaces inside its container')
})

test('Prometheus scrapes the producer and the consumer every 5 s', () => {
  const mount = bindMounts('prometheus').find((m) => m.target === '/etc/prometheus/prometheus.yml')
  assert.ok(mount, 'prometheus mounts its configuration at /etc/prometheus/prometheus.yml')
  const config = obj(readYaml(resolve(composeDir, mount.source)), 'prometheus.yml')
  assert.equal(obj(config.global, 'global').scrape_interval, '5s')
  const jobs = config.scrape_configs
  assert.ok(Array.isArray(jobs), 'scrape_configs should be a list')
  const targets = new Map<string, string[]>()
  for (const job of jobs) {
    const j = obj(job, 'scrape config')
    const statics = Array.isArray(j.static_configs) ? j.static_configs : []
    targets.set(
      String(j.job_name),
      statics.flatMap((s) => {
        const t = obj(s, 'static config').targets
        return Array.isArray(t) ? t.map(String) : []
      }),
    )
  }
  assert.deepEqual(targets.get('producer'), ['producer:9001'])
  assert.deepEqual(targets.get('consumer'), ['consumer:9000'])
})

test('Prometheus loads the alert rules mounted beside its configuration; Grafana the dashboard', () => {
  const mounts = bindMounts('prometheus')
  const config = obj(readYaml(resolve(composeDir, 'prometheus.yml')), 'prometheus.yml')
  const ruleFiles = config.rule_files
  assert.ok(Array.isArray(ruleFiles) && ruleFiles.includes('alerts.yml'), 'prometheus.yml loads alerts.yml')
  for (const file of ruleFiles.map(String)) {
    const inContainer = resolve('/etc/prometheus', file)
    const mount = mounts.find((m) => m.target === inContainer)
    assert.ok(mount, `prometheus mounts ${file} at ${inContainer}`)
    assert.equal(resolve(composeDir, mount.source), resolve(composeDir, file), `${file} is the repository's`)
  }
  const grafana = bindMounts('grafana').find((m) => m.target === '/etc/grafana/provisioning')
  assert.ok(grafana, 'grafana mounts its provisioning directory')
  const provider = obj(
    readYaml(resolve(composeDir, grafana.source, 'dashboards/pipeline.yml')),
    'pipeline.yml',
  )
  const providers = provider.providers
  assert.ok(Array.isArray(providers) && providers.length > 0, 'a dashboard provider')
  const path = String(obj(obj(providers[0], 'provider').options, 'options').path)
  assert.ok(path.startsWith('/etc/grafana/provisioning/'), 'the provider reads inside the mount')
  const onHost = resolve(composeDir, grafana.source, path.slice('/etc/grafana/provisioning/'.length))
  assert.ok(
    existsSync(resolve(onHost, 'pipeline.json')),
    `the dashboard is where the provider looks (${onHost})`,
  )
})

test('Grafana provisions a Prometheus datasource pointing at the prometheus service', () => {
  const mount = bindMounts('grafana').find((m) => m.target === '/etc/grafana/provisioning')
  assert.ok(mount, 'grafana mounts its provisioning directory')
  const file = resolve(composeDir, mount.source, 'datasources/prometheus.yml')
  const provisioning = obj(readYaml(file), file)
  const sources = provisioning.datasources
  assert.ok(Array.isArray(sources), 'datasources should be a list')
  const prometheus = sources.map((s) => obj(s, 'datasource')).find((s) => s.type === 'prometheus')
  assert.ok(prometheus, 'a prometheus datasource is provisioned')
  assert.equal(prometheus.url, 'http://prometheus:9090')
})

test('the Dockerfile is multi-stage on node:24 and runs as a non-root user', () => {
  const dockerfile = readFileSync(resolve(root, 'Dockerfile'), 'utf8')
  const lines = dockerfile.split('\n').map((l) => l.trim())
  const froms = lines.filter((l) => /^FROM\s/i.test(l))
  assert.ok(froms.length >= 2, `the Dockerfile should have at least two stages, has ${froms.length}`)
  for (const from of froms)
    assert.match(from, /\snode:24[-.\w]*(\s|$)/, `every stage builds on node:24: ${from}`)
  const users = lines.filter((l) => /^USER\s/i.test(l))
  const user = users.at(-1)?.split(/\s+/)[1]
  assert.ok(user !== undefined, 'the Dockerfile should switch to a non-root USER')
  assert.ok(!['root', '0', '0:0'].includes(user), `the final USER is ${user}, which is root`)
  assert.ok(
    lines.some((l) => /^RUN\s.*npm (ci|install)\b.*--omit=dev/.test(l)),
    'only production dependencies are installed (--omit=dev), from the lockfile',
  )
  // The services run the compiled build: type stripping costs every process memory (bench/README.md).
  assert.ok(
    lines.some((l) => /^RUN\s.*tsc -p tsconfig\.build\.json/.test(l)),
    'a build stage compiles the sources with tsconfig.build.json',
  )
  assert.ok(
    lines.includes('COPY --from=build /app/dist ./dist'),
    'the runtime stage takes the compiled dist/ from the build stage',
  )
  assert.ok(
    lines.includes('ENTRYPOINT ["node", "dist/cli.js"]'),
    'the entrypoint runs the compiled pipeline CLI with Node directly',
  )
  assert.ok(
    lines.some((l) => /^ENV\s+NODE_ENV=production/.test(l)),
    'NODE_ENV=production is set',
  )
})

test('the Docker build context leaves out node_modules, .git and other local state', () => {
  const ignored = new Set(
    readFileSync(resolve(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#')),
  )
  for (const entry of ['node_modules', '.git', '.cache', 'dist', 'test', 'bench']) {
    assert.ok(ignored.has(entry), `.dockerignore should list ${entry}`)
  }
})
