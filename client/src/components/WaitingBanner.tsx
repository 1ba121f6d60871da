import type { Outgoing } from '../chat/state'
import { useNow } from './useNow'

/** Shown once events have been accepted but no worker has answered for a moment. */
export const waitingAfterMs = 1000

export function WaitingBanner({ waiting }: { waiting: Outgoing[] }) {
  const now = useNow(waiting.length > 0)
  const stale = waiting.filter((o) => now - o.since >= waitingAfterMs)
  if (stale.length === 0) return null
  return (
    <p className="banner floating" role="status" aria-label="workers">
      Waiting for workers: {stale.length === 1 ? '1 event is' : `${stale.length} events are`} safely queued and will be
      processed as soon as a worker runs. You stay connected.
    </p>
  )
}
