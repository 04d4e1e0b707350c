/**
 * What the services need from Kafka to publish, as narrow interfaces: their logic is read and
 * tested without the client library in view.
 */
import type { DlqEntry } from '../dlq/entry.ts'

/** A message to publish; a null value is a tombstone, a Buffer a value already encoded as UTF-8. */
export interface OutgoingMessage<V extends string | Buffer = string> {
  readonly topic: string
  readonly key: string | undefined
  readonly value: V | null
  readonly headers: Readonly<Record<string, string>>
}

/** Where Kafka put a message. */
export interface DeliveryReport {
  readonly partition: number
  readonly offset: bigint
}

/** Sends messages and resolves once Kafka acknowledged all of them (acks=all). */
export interface MessagePublisher {
  send(messages: readonly OutgoingMessage<string | Buffer>[]): Promise<readonly DeliveryReport[]>
}

/** Writes dead-letter entries and resolves once Kafka acknowledged them. */
export interface DeadLetterWriter {
  write(entries: readonly DlqEntry[]): Promise<void>
}
