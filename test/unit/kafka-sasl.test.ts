/**
 * SASL/PLAIN, pure parts: the broker-side JAAS entry and its escaping (launcher), which configurations
 * make `pipeline up` start a SASL broker, and how a refused login becomes PIPELINE_KAFKA_AUTH_FAILED.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError } from '@platformatic/kafka'
import { ErrorCodes, isPipelineError } from '../../src/errors.ts'
import {
  LAUNCHER_SASL_USER,
  launcherSaslFromConfig,
  propertiesValue,
  saslServerProperties,
  validateSaslUsers,
} from '../../src/infra/kafka-sasl.ts'
import { kafkaAuthFailure, kafkaTlsFailure } from '../../src/kafka/connection.ts'

/** Reads a properties value back the way java.util.Properties does (the escapes we emit). */
const readProperties = (value: string): string =>
  value.replace(/\\u([0-9a-f]{4})|\\(.)/g, (_m, hex: string | undefined, char: string | undefined) =>
    hex ? String.fromCharCode(Number.parseInt(hex, 16)) : (char ?? ''),
  )

describe('saslServerProperties', () => {
  const launcher = { username: LAUNCHER_SASL_USER, password: 'launcher-pw' }

  test('enables PLAIN on the client listener with every user plus the launcher', () => {
    const lines = saslServerProperties('SASL_PLAINTEXT', { alice: 'a-pw', bob: 'b-pw' }, launcher)
    assert.ok(lines.includes('sasl.enabled.mechanisms=PLAIN'))
    assert.ok(lines.includes('sasl.mechanism.inter.broker.protocol=PLAIN'))
    const jaas = lines.find((l) => l.startsWith('listener.name.sasl_plaintext.plain.sasl.jaas.config='))
    assert.equal(
      jaas?.slice(jaas.indexOf('=') + 1),
      `org.apache.kafka.common.security.plain.PlainLoginModule required username="${LAUNCHER_SASL_USER}" password="launcher-pw" user_alice="a-pw" user_bob="b-pw" user_${LAUNCHER_SASL_USER}="launcher-pw";`,
    )
  })

  test('escapes quotes and backslashes for JAAS, then for the properties file', () => {
    const password = 'a"b\\c\nö'
    const [, , line = ''] = saslServerProperties('SASL_SSL', { alice: password }, launcher)
    assert.doesNotMatch(line, /\n/, 'one line')
    const jaas = readProperties(line.slice(line.indexOf('=') + 1))
    assert.ok(jaas.includes(' user_alice="a\\"b\\\\c\\nö" '), jaas)
  })

  test('propertiesValue leaves printable ASCII alone', () => {
    assert.equal(propertiesValue('plain = text;'), 'plain = text;')
    assert.equal(propertiesValue('\\'), '\\\\')
    assert.equal(propertiesValue('\t'), '\\u0009')
  })
})

describe('validateSaslUsers', () => {
  test('accepts Kafka-style names with passwords', () => {
    validateSaslUsers({ 'svc.pipeline-1': 'pw', 'a@b': 'x' })
  })

  for (const [what, users] of [
    ['no user', {}],
    ['a name JAAS cannot hold', { 'bad name': 'pw' }],
    ['the launcher’s own name', { [LAUNCHER_SASL_USER]: 'pw' }],
    ['an empty password', { alice: '' }],
  ] as const)
    test(`refuses ${what}, naming no password`, () => {
      assert.throws(
        () => validateSaslUsers(users),
        (error: unknown) => isPipelineError(error, ErrorCodes.CONFIG_INVALID) && !/pw/.test(error.message),
      )
    })
})

describe('launcherSaslFromConfig', () => {
  test('no mechanism: no SASL', () => {
    assert.equal(launcherSaslFromConfig({}), undefined)
  })

  test('PLAIN: the services’ user is the broker’s', () => {
    assert.deepEqual(
      launcherSaslFromConfig({
        KAFKA_SASL_MECHANISM: 'PLAIN',
        KAFKA_SASL_USERNAME: 'svc',
        KAFKA_SASL_PASSWORD: 'pw',
      }),
      { users: { svc: 'pw' } },
    )
  })

  test('SCRAM: a one-line refusal naming the mechanism', () => {
    assert.throws(
      () =>
        launcherSaslFromConfig({
          KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
          KAFKA_SASL_USERNAME: 'svc',
          KAFKA_SASL_PASSWORD: 'pw',
        }),
      /SASL\/PLAIN only, not KAFKA_SASL_MECHANISM=SCRAM-SHA-512/,
    )
  })
})

describe('kafkaAuthFailure', () => {
  // The shape the client gives a refused login: an aggregate of connection errors caused by it.
  const refused = () =>
    new MultipleErrors('Listing topics failed.', [
      new NetworkError('Connection to 127.0.0.1:9092 failed.', {
        cause: new AuthenticationError('SASL authentication failed.', {
          cause: new MultipleErrors('Received response with error', [
            new ProtocolError(
              'SASL_AUTHENTICATION_FAILED',
              'Authentication failed: Invalid username or password',
            ),
          ]),
        }),
      }),
    ])

  test('a refused login: PIPELINE_KAFKA_AUTH_FAILED with the broker’s reason and what to check', () => {
    const error = kafkaAuthFailure(refused(), 'creating the topics a')
    assert.ok(isPipelineError(error, ErrorCodes.KAFKA_AUTH_FAILED))
    assert.equal(
      error.message,
      'Kafka authentication failed while creating the topics a: the broker refused the SASL credentials (Authentication failed: Invalid username or password); check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
    )
  })

  test('any other failure: undefined', () => {
    const other = new MultipleErrors('Listing topics failed.', [new NetworkError('Connection refused')])
    assert.equal(kafkaAuthFailure(other, 'x'), undefined)
    assert.equal(kafkaAuthFailure(new ProtocolError('TOPIC_AUTHORIZATION_FAILED'), 'x'), undefined)
    assert.equal(kafkaAuthFailure('not an error', 'x'), undefined)
  })
})

describe('kafkaTlsFailure', () => {
  test('an untrusted certificate: PIPELINE_KAFKA_TLS_FAILED naming the code and KAFKA_TLS_CA_FILE', () => {
    const tls = Object.assign(
      new Error(
        'self-signed certificate; if the root CA is installed locally, try running Node.js with --use-system-ca',
      ),
      { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
    )
    const error = kafkaTlsFailure(
      new MultipleErrors('Listing topics failed.', [
        new NetworkError('Connection to b:9093 failed.', { cause: tls }),
      ]),
      'creating the topics a',
    )
    assert.ok(isPipelineError(error, ErrorCodes.KAFKA_TLS_FAILED))
    assert.equal(
      error.message,
      "Kafka TLS failed while creating the topics a: the broker's certificate was not accepted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate); set KAFKA_TLS_CA_FILE to the certificate or CA that signed it, or check the broker address",
    )
  })

  test('any other failure: undefined', () => {
    assert.equal(kafkaTlsFailure(new NetworkError('Connection refused'), 'x'), undefined)
    assert.equal(
      kafkaTlsFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'x'),
      undefined,
    )
  })
})
