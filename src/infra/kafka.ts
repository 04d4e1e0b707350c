/**
 * A real Apache Kafka broker for local runs and tests, without Docker: jars from Maven Central, one
 * KRaft node (broker + controller) as a child JVM on 127.0.0.1.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { type ManagedChild, reapStale, spawnChild } from './child.ts'
import {
  type KafkaSaslOptions,
  LAUNCHER_SASL_USER,
  type SaslCredentials,
  saslServerProperties,
  validateSaslUsers,
} from './kafka-sasl.ts'
import { type BrokerCertificate, ensureBrokerCertificate, sslServerProperties } from './kafka-tls.ts'
import { cacheDir, projectRoot } from './paths.ts'
import { assertPortFree, freePort } from './ports.ts'
import { awaitChildReady } from './wait.ts'

/** The broker version the pom resolves; keep in step with infra/kafka/pom.xml. */
export const KAFKA_VERSION = '4.2.0'

/** Options of {@link startKafka}. */
export interface KafkaOptions {
  /** Holds the broker's log segments and logs; formatted on first use, kept across restarts. */
  readonly dataDir: string
  readonly port?: number
  readonly heapMb?: number
  readonly readyTimeoutMs?: number
  /**
   * When set, the client listener is SASL_PLAINTEXT and requires SASL/PLAIN with one of these users;
   * the controller listener stays PLAINTEXT (it is bound to 127.0.0.1 and only the broker uses it).
   */
  readonly sasl?: KafkaSaslOptions
  /**
   * When true, the client listener speaks TLS (SSL, or SASL_SSL with `sasl`) with a self-signed
   * certificate for 127.0.0.1 made by keytool on first use and kept in `<dataDir>/tls/`;
   * clients trust {@link LocalKafka.caFile}.
   */
  readonly tls?: boolean
  /**
   * Port of the KRaft controller listener; a free one when absent. A restart on the same `dataDir`
   * passes the first start's {@link LocalKafka.controllerPort}: the formatted quorum names it.
   */
  readonly controllerPort?: number
}

/** A running local broker. */
export interface LocalKafka {
  readonly brokers: string[]
  readonly controllerPort: number
  readonly child: ManagedChild
  /** With a SASL listener: the launcher's own user, for {@link kafkaAnswers}; not one of the callers'. */
  readonly probeCredentials?: SaslCredentials
  /** With TLS: the PEM certificate clients trust (`KAFKA_TLS_CA_FILE`). */
  readonly caFile?: string
  stop(): Promise<void>
}

function hasCommand(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore' })
  return result.error === undefined && result.status === 0
}

/**
 * Makes sure the broker jars are in the cache, downloading them with Maven the first time.
 *
 * @returns the folder holding the jars (the JVM classpath is `<folder>/*`)
 * @throws {PipelineError} when Java or Maven is missing or the download fails
 */
export function ensureKafkaJars(): string {
  const libs = join(cacheDir, 'kafka', KAFKA_VERSION, 'libs')
  const complete = join(libs, '.complete')
  if (existsSync(complete)) return libs
  if (!hasCommand('java', ['-version'])) {
    throw new PipelineError(
      ErrorCodes.INFRA_JAVA_MISSING,
      'Java 17+ is needed for the local Kafka broker but `java` was not found: install a JDK (apt-get install -y openjdk-17-jre-headless) or set KAFKA_BROKERS to an existing broker',
    )
  }
  if (!hasCommand('mvn', ['-v'])) {
    throw new PipelineError(
      ErrorCodes.INFRA_MAVEN_MISSING,
      'Maven is needed once to download the Kafka broker jars but `mvn` was not found: install it (apt-get install -y maven) or set KAFKA_BROKERS to an existing broker',
    )
  }
  mkdirSync(libs, { recursive: true })
  const pom = join(projectRoot, 'infra', 'kafka', 'pom.xml')
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  )
  if (result.status !== 0) {
    const reason = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ')
    throw new PipelineError(
      ErrorCodes.INFRA_DOWNLOAD_FAILED,
      `Downloading the Kafka ${KAFKA_VERSION} jars with Maven failed (${reason || `exit ${result.status}`}): check access to Maven Central, then retry`,
    )
  }
  writeFileSync(complete, `${new Date().toISOString()}\n`)
  return libs
}

/** How the client listener is secured. */
interface ListenerSecurity {
  readonly sasl?: { users: Readonly<Record<string, string>>; launcher: SaslCredentials }
  readonly certificate?: BrokerCertificate
}

function serverProperties(
  dataDir: string,
  port: number,
  controllerPort: number,
  { sasl, certificate }: ListenerSecurity,
): string {
  // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL: Kafka's names, also used as the listener's name.
  const client = `${sasl ? 'SASL_' : ''}${certificate ? 'SSL' : 'PLAINTEXT'}`
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=${client}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=${client}://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=${client}:${client},CONTROLLER:PLAINTEXT`,
    `inter.broker.listener.name=${client}`,
    ...(sasl === undefined
      ? []
      : saslServerProperties(certificate ? 'SASL_SSL' : 'SASL_PLAINTEXT', sasl.users, sasl.launcher)),
    ...(certificate === undefined ? [] : sslServerProperties(certificate)),
    `log.dirs=${join(dataDir, 'log')}`,
    // A single node: every internal topic has one replica.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // The services create their topics with the right partitions and policies; a typo must not.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    '',
  ].join('\n')
}

const log4jProperties = (file: string): string =>
  [
    'rootLogger.level=INFO',
    'rootLogger.appenderRef.file.ref=file',
    'logger.kafka.name=kafka',
    'logger.kafka.level=WARN',
    'logger.apache.name=org.apache.kafka',
    'logger.apache.level=WARN',
    'logger.started.name=kafka.server.KafkaRaftServer',
    'logger.started.level=INFO',
    'appender.file.type=File',
    'appender.file.name=file',
    `appender.file.fileName=${file}`,
    'appender.file.layout.type=PatternLayout',
    'appender.file.layout.pattern=[%d] %p %m (%c)%n',
    '',
  ].join('\n')

/**
 * Resolves true when the broker answers a metadata request.
 *
 * @param sasl - credentials for a SASL/PLAIN listener (see {@link LocalKafka.probeCredentials})
 * @param ca - for a TLS listener, the PEM certificate(s) to trust (see {@link LocalKafka.caFile})
 */
export async function kafkaAnswers(brokers: string[], sasl?: SaslCredentials, ca?: string): Promise<boolean> {
  const admin = new Admin({
    clientId: 'pipeline-launcher',
    bootstrapBrokers: brokers,
    timeout: 2000,
    retries: 0,
    ...(ca === undefined ? {} : { tls: { ca } }),
    ...(sasl === undefined
      ? {}
      : { sasl: { mechanism: 'PLAIN' as const, username: sasl.username, password: () => sasl.password } }),
  })
  try {
    await admin.metadata({ topics: [] })
    return true
  } catch {
    return false
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/**
 * Starts a single-node KRaft broker on 127.0.0.1 and resolves once it answers metadata requests.
 *
 * @throws {PipelineError} on a missing tool, a busy port, a failed download, or a broker that is
 *   not ready within the timeout (60 s by default); nothing is left running in that case
 */
export async function startKafka(options: KafkaOptions): Promise<LocalKafka> {
  const port = options.port ?? 9092
  await assertPortFree(
    port,
    'the local Kafka broker',
    'KAFKA_PORT to another port, or KAFKA_BROKERS to use a running broker',
  )
  const controllerPort = options.controllerPort ?? (await freePort())
  const libs = ensureKafkaJars()
  const classpath = `${libs}/*`
  mkdirSync(options.dataDir, { recursive: true })
  const pidFile = join(options.dataDir, 'kafka.pid')
  await reapStale(pidFile, 'kafka.Kafka')
  const config = join(options.dataDir, 'server.properties')
  const log4j = join(options.dataDir, 'log4j2.properties')
  const brokerLog = join(options.dataDir, 'broker.log')
  let sasl: { users: Readonly<Record<string, string>>; launcher: SaslCredentials } | undefined
  if (options.sasl !== undefined) {
    validateSaslUsers(options.sasl.users)
    // A fresh launcher password per start: only this process and the broker ever know it.
    const launcher = { username: LAUNCHER_SASL_USER, password: randomBytes(18).toString('base64url') }
    sasl = { users: options.sasl.users, launcher }
  }
  const certificate = options.tls ? ensureBrokerCertificate(join(options.dataDir, 'tls')) : undefined
  const security = {
    ...(sasl === undefined ? {} : { sasl }),
    ...(certificate === undefined ? {} : { certificate }),
  }
  // The file holds the SASL and key store passwords: readable by us alone (recreated, as `mode`
  // applies on creation only).
  rmSync(config, { force: true })
  writeFileSync(config, serverProperties(options.dataDir, port, controllerPort, security), { mode: 0o600 })
  writeFileSync(log4j, log4jProperties(brokerLog))
  // C1 only (no C2 optimizing compiler): on the small machines this local broker is for, C2's
  // compiler thread took about half the broker's CPU in its first minutes, on the cores the
  // pipeline needs. Measured in session 10: the broker's CPU per record published fell by ~40 % on
  // a fresh broker and ~20 % on a warm one, and by a third while the consumer loads; see
  // bench/README.md, "Round 5".
  const jvm = [
    `-Xmx${options.heapMb ?? 768}m`,
    '-Xms256m',
    '-XX:+UseG1GC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
  ]
  const logging = `-Dlog4j2.configurationFile=${log4j}`
  if (!existsSync(join(options.dataDir, 'log', 'meta.properties'))) {
    // Like Kafka's own Uuid.randomUuid: an id starting with '-' reads as an option to the tool.
    let clusterId = randomBytes(16).toString('base64url')
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
    const format = spawnSync(
      'java',
      [
        ...jvm,
        logging,
        '-cp',
        classpath,
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        clusterId,
        '-c',
        config,
      ],
      { encoding: 'utf8' },
    )
    if (format.status !== 0) {
      throw new PipelineError(
        ErrorCodes.INFRA_NOT_READY,
        `Formatting Kafka storage in ${options.dataDir} failed: ${(format.stderr || format.stdout).trim().split('\n').pop()}`,
      )
    }
  }
  const child = spawnChild({
    name: 'kafka',
    command: 'java',
    args: [...jvm, logging, '-cp', classpath, 'kafka.Kafka', config],
    logFile: join(options.dataDir, 'kafka.out'),
    pidFile,
  })
  const brokers = [`127.0.0.1:${port}`]
  const ca = certificate === undefined ? undefined : readFileSync(certificate.caFile, 'utf8')
  await awaitChildReady(child, () => kafkaAnswers(brokers, sasl?.launcher, ca), {
    what: `Kafka on ${brokers[0]}`,
    timeoutMs: options.readyTimeoutMs ?? 60_000,
    intervalMs: 300,
    logFile: brokerLog,
  })
  return {
    brokers,
    controllerPort,
    child,
    ...(sasl === undefined ? {} : { probeCredentials: sasl.launcher }),
    ...(certificate === undefined ? {} : { caFile: certificate.caFile }),
    stop: () => child.stop(20_000),
  }
}
