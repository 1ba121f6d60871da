import type { ConnectionStatus } from '../gateway/gateway'

const labels: Record<ConnectionStatus, string> = {
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  disconnected: 'disconnected',
}

export function ConnectionIndicator({ status }: { status: ConnectionStatus }) {
  return (
    <span className={`indicator indicator-${status}`} role="status" aria-label="connection" data-status={status}>
      <span className="dot" aria-hidden="true" />
      {labels[status]}
    </span>
  )
}
