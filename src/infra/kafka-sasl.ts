/**
 * The broker side of SASL/PLAIN for the local launcher: the listener settings and the JAAS entry that
 * lists the accepted users. Pure (no I/O), so the escaping is unit-tested; the result holds passwords
 * and goes only into the broker's own config file (mode 0600), never to a log.
 */
import { ErrorCodes, PipelineError } from '../errors.ts'

/** SASL/PLAIN on the broker's client listener. */
export interface KafkaSaslOptions {
  /** Users the client listener accepts, name → password. At least one. */
  readonly users: Readonly<Record<string, string>>
}

/** The credentials the launcher itself uses on the client listener (ready probe, inter-broker). */
export interface SaslCredentials {
  readonly username: string
  readonly password: string
}

/** The broker-internal user; callers' users must not clash with it. */
export const LAUNCHER_SASL_USER = 'pipeline-launcher'

// JAAS option names are tokens of Kafka's JaasConfig parser: `user_<name>` may hold no quote,
// space, `=` or `;`. Kafka's own user names are usually this shape anyway.
const userNamePattern = /^[A-Za-z0-9._@-]{1,128}$/

const configError = (message: string): PipelineError =>
  new PipelineError(ErrorCodes.CONFIG_INVALID, `Invalid Kafka SASL launcher option: ${message}`)

const jaasEscapes: Readonly<Record<string, string>> = { '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r' }

/**
 * A JAAS quoted string. Kafka parses it with Java's StreamTokenizer, which ends a quoted string at a
 * line break and reads C-style escapes: `\\`, `\"`, `\n` and `\r` keep a password intact.
 */
function jaasQuote(value: string): string {
  return `"${value.replace(/[\\"\n\r]/g, (c) => jaasEscapes[c] ?? c)}"`
}

/**
 * A value as a Java properties file reads it back unchanged: backslashes doubled, and anything
 * outside printable ASCII (line breaks included) as `\uXXXX`.
 */
export function propertiesValue(value: string): string {
  let out = ''
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0
    if (char === '\\') out += '\\\\'
    else if (code >= 0x20 && code <= 0x7e) out += char
    else for (let i = 0; i < char.length; i++) out += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`
  }
  return out
}

/**
 * Checks the users (names usable in JAAS, non-empty passwords, not the launcher's own name).
 *
 * @throws {PipelineError} `PIPELINE_CONFIG_INVALID` naming the user (never the password)
 */
export function validateSaslUsers(users: Readonly<Record<string, string>>): void {
  const names = Object.keys(users)
  if (names.length === 0) throw configError('no users given; expected at least one name and password')
  for (const name of names) {
    if (!userNamePattern.test(name))
      throw configError(
        `user name ${JSON.stringify(name)} is not usable; expected 1-128 of A-Z a-z 0-9 . _ @ -`,
      )
    if (name === LAUNCHER_SASL_USER) throw configError(`user name ${name} is reserved for the launcher`)
    if (!users[name]) throw configError(`user ${name} has an empty password`)
  }
}

/**
 * The server.properties lines that make the client listener (`SASL_PLAINTEXT` or `SASL_SSL`, also its
 * name) require SASL/PLAIN.
 * The launcher's own user doubles as the inter-broker identity, which a single node needs configured
 * even though it never replicates.
 *
 * @param users - validated with {@link validateSaslUsers}
 */
export function saslServerProperties(
  listener: 'SASL_PLAINTEXT' | 'SASL_SSL',
  users: Readonly<Record<string, string>>,
  launcher: SaslCredentials,
): string[] {
  const accepted = { ...users, [launcher.username]: launcher.password }
  const options = [
    `username=${jaasQuote(launcher.username)}`,
    `password=${jaasQuote(launcher.password)}`,
    ...Object.entries(accepted).map(([name, password]) => `user_${name}=${jaasQuote(password)}`),
  ]
  const jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required ${options.join(' ')};`
  return [
    'sasl.enabled.mechanisms=PLAIN',
    'sasl.mechanism.inter.broker.protocol=PLAIN',
    `listener.name.${listener.toLowerCase()}.plain.sasl.jaas.config=${propertiesValue(jaas)}`,
  ]
}

/**
 * What `pipeline up` asks of the broker it launches: the services' own SASL/PLAIN user when
 * KAFKA_SASL_MECHANISM=PLAIN, so the local stack exercises the same authentication as a real cluster.
 *
 * @returns undefined when the services use no SASL
 * @throws {PipelineError} `PIPELINE_CONFIG_INVALID` for a mechanism the launcher cannot serve (SCRAM)
 */
export function launcherSaslFromConfig(config: {
  readonly KAFKA_SASL_MECHANISM?: string | undefined
  readonly KAFKA_SASL_USERNAME?: string | undefined
  readonly KAFKA_SASL_PASSWORD?: string | undefined
}): KafkaSaslOptions | undefined {
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: user, KAFKA_SASL_PASSWORD: password } = config
  if (mechanism === undefined) return undefined
  if (mechanism !== 'PLAIN')
    throw configError(
      `the local broker serves SASL/PLAIN only, not KAFKA_SASL_MECHANISM=${mechanism}; use PLAIN, or KAFKA_BROKERS for a cluster with ${mechanism}`,
    )
  if (!user || !password)
    throw configError('KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD')
  return { users: { [user]: password } }
}
