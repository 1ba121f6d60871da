/** A room message as the worker sends it, live (`message`) and in a `joined` snapshot's history. */
export interface RoomMessage {
  room: string
  seq: number
  from: string
  text: string
  at: string
  clientId?: string
}

/**
 * Merges newly arrived messages into a room's list: ordered by the room's sequence, each seq
 * once. Delivery is at least once and messages from different workers can cross, so a client
 * must never simply append.
 */
export function mergeMessages(existing: readonly RoomMessage[], incoming: readonly RoomMessage[]): RoomMessage[] {
  if (incoming.length === 0) return existing as RoomMessage[]
  const bySeq = new Map<number, RoomMessage>()
  for (const message of existing) bySeq.set(message.seq, message)
  let changed = false
  for (const message of incoming) {
    const known = bySeq.get(message.seq)
    // A live copy carries the sender's clientId, a history copy does not: keep what we know.
    if (!known || (!known.clientId && message.clientId)) {
      bySeq.set(message.seq, known ? { ...known, clientId: message.clientId } : message)
      changed = true
    }
  }
  if (!changed) return existing as RoomMessage[]
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq)
}

/**
 * The highest seq up to which the list has no hole, counting from its first message (a history
 * starts part-way): what a resume may say was seen. A message that overtook a missing one does
 * not count, so the missing one comes back with the resume; the merge drops the repeat.
 */
export function lastContiguousSeq(messages: readonly RoomMessage[]): number {
  if (messages.length === 0) return 0
  let last = messages[0].seq
  for (const message of messages.slice(1)) {
    if (message.seq !== last + 1) break
    last = message.seq
  }
  return last
}
