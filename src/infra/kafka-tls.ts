/**
 * TLS for the local broker's client listener: a self-signed certificate for 127.0.0.1/localhost made
 * once with the JDK's `keytool`, kept in the data directory so a restarted broker presents the same
 * certificate its clients already trust.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, PipelineError } from '../errors.ts'
import { propertiesValue } from './kafka-sasl.ts'

/**
 * A broker certificate: the PKCS12 key store the broker serves, the trust store it checks itself
 * against (it is its own inter-broker client), and the PEM its clients trust.
 */
export interface BrokerCertificate {
  readonly keystore: string
  readonly truststore: string
  readonly password: string
  /** The self-signed certificate as PEM: what clients pass as their CA (`KAFKA_TLS_CA_FILE`). */
  readonly caFile: string
}

/**
 * The certificate in `dir`, made on first use (a 2048-bit RSA key valid for ten years, for
 * IP:127.0.0.1 and DNS:localhost).
 *
 * @throws {PipelineError} when keytool is missing or fails
 */
export function ensureBrokerCertificate(dir: string): BrokerCertificate {
  const keystore = join(dir, 'broker.p12')
  const passwordFile = join(dir, 'keystore.password')
  const caFile = join(dir, 'ca.pem')
  const truststore = join(dir, 'truststore.p12')
  const files = [keystore, truststore, passwordFile, caFile]
  if (files.every((file) => existsSync(file)))
    return { keystore, truststore, password: readFileSync(passwordFile, 'utf8').trim(), caFile }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  for (const file of files) rmSync(file, { force: true })
  const password = randomBytes(18).toString('base64url')
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 })
  // The password goes through the environment, never the command line (visible in `ps`).
  const env = { ...process.env, PIPELINE_KEYSTORE_PASSWORD: password }
  const run = (args: string[], what: string, store = keystore) => {
    const common = [
      '-keystore',
      store,
      '-storetype',
      'PKCS12',
      '-storepass:env',
      'PIPELINE_KEYSTORE_PASSWORD',
    ]
    const result = spawnSync('keytool', [...args, ...common], { encoding: 'utf8', env })
    if (result.error !== undefined || result.status !== 0) keytoolFailed(result, what)
  }
  run(
    [
      '-genkeypair',
      '-alias',
      'broker',
      '-keyalg',
      'RSA',
      '-keysize',
      '2048',
      '-validity',
      '3650',
      '-dname',
      'CN=localhost',
      '-ext',
      'SAN=IP:127.0.0.1,DNS:localhost',
    ],
    'Making the broker certificate',
  )
  run(['-exportcert', '-rfc', '-alias', 'broker', '-file', caFile], 'Exporting the broker certificate')
  run(
    ['-importcert', '-noprompt', '-alias', 'broker', '-file', caFile],
    'Making the broker trust store',
    truststore,
  )
  return { keystore, truststore, password, caFile }
}

function keytoolFailed(result: ReturnType<typeof spawnSync>, what: string): never {
  const output = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').pop()
  throw new PipelineError(
    result.error === undefined ? ErrorCodes.INFRA_NOT_READY : ErrorCodes.INFRA_JAVA_MISSING,
    `${what} with keytool failed (${result.error?.message ?? output}): the TLS broker needs a JDK's keytool (apt-get install -y openjdk-17-jdk-headless)`,
  )
}

/** The server.properties lines that give every SSL listener the certificate. */
export function sslServerProperties(certificate: BrokerCertificate): string[] {
  return [
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${propertiesValue(certificate.keystore)}`,
    `ssl.keystore.password=${propertiesValue(certificate.password)}`,
    `ssl.key.password=${propertiesValue(certificate.password)}`,
    'ssl.truststore.type=PKCS12',
    `ssl.truststore.location=${propertiesValue(certificate.truststore)}`,
    `ssl.truststore.password=${propertiesValue(certificate.password)}`,
    // Clients authenticate with SASL, not certificates.
    'ssl.client.auth=none',
  ]
}
