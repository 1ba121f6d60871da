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
