/**
 * How a group's leader shares partitions among its members: each topic's partitions go round robin
 * to the members that subscribed to it, and only to them.
 *
 * Why not the client's own round robin: it assigns the topics the leader itself reads, to every
 * member, subscribed or not. A member whose stream is gone keeps its membership for a while (its
 * `close` failed or timed out while the broker was away, and the client still answers heartbeats and
 * rejoins) and subscribes to nothing. Chosen as leader, it assigned nothing to anyone, and the group
 * stayed Stable with every partition unread, however often the live members rejoined (seen in chaos
 * runs and CI after a broker restart: "no fetch answered" every 30 s, lag standing for minutes). As a
 * plain member it was handed partitions it never reads. Here it gets none, and the rest is shared by
 * those that read.
 */
import type {
  ClusterMetadata,
  ExtendedGroupProtocolSubscription,
  GroupPartitionsAssignments,
} from '@platformatic/kafka'

/**
 * The assignment of `metadata`'s partitions of every topic some member subscribed to: round robin over
 * the subscribed members in member-id order (the same on whichever member leads), carried on from
 * topic to topic so that members reading the same topics stay within one partition of each other.
 * Every member gets an entry, possibly empty. A topic the metadata does not know is left out.
 *
 * The signature is the client's `partitionAssigner`; the leader's own topics are ignored on purpose.
 */
export function subscribedRoundRobin(
  _leader: string,
  members: ReadonlyMap<string, Pick<ExtendedGroupProtocolSubscription, 'topics'>>,
  _leaderTopics: ReadonlySet<string>,
  metadata: Pick<ClusterMetadata, 'topics'>,
): GroupPartitionsAssignments[] {
  const ids = [...members.keys()].sort()
  const result = new Map(ids.map((memberId) => [memberId, { memberId, assignments: new Map() }] as const))
  const topics = [...new Set(ids.flatMap((id) => members.get(id)?.topics ?? []))].sort()
  let turn = 0
  for (const topic of topics) {
    const partitions = metadata.topics.get(topic)?.partitionsCount ?? 0
    const readers = ids.filter((id) => members.get(id)?.topics?.includes(topic))
    for (let partition = 0; partition < partitions; partition++) {
      const reader = readers[turn++ % readers.length]
      if (reader === undefined) continue
      const member = result.get(reader)
      if (member === undefined) continue
      const held = member.assignments.get(topic)
      if (held === undefined) member.assignments.set(topic, { topic, partitions: [partition] })
      else held.partitions.push(partition)
    }
  }
  return [...result.values()]
}
