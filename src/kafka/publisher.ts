/**
 * The {@link MessagePublisher} every service hands its stages: `publish` on the shared producer,
 * counted per topic and outcome in `pipeline_kafka_publish_total` — in one place, so source
 * records, refresh requests and dead letters are all counted alike.
 */
import type { Counter } from 'prom-client'
import type { MessagePublisher } from './ports.ts'
import { type KafkaProducer, publish } from './producer.ts'

function countByTopic(messages: readonly { readonly topic: string }[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const { topic } of messages) counts.set(topic, (counts.get(topic) ?? 0) + 1)
  return counts
}

/** A publisher over `producer` that counts what Kafka acknowledged or refused. */
export function meteredPublisher(
  producer: KafkaProducer,
  publishes: Counter<'topic' | 'outcome'>,
): MessagePublisher {
  return {
    async send(messages) {
      try {
        const reports = await publish(producer, messages)
        for (const [topic, n] of countByTopic(messages)) publishes.inc({ topic, outcome: 'acknowledged' }, n)
        return reports
      } catch (error) {
        for (const [topic, n] of countByTopic(messages)) publishes.inc({ topic, outcome: 'error' }, n)
        throw error
      }
    },
  }
}
