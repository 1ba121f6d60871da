import { createLogger, type Logger, type ProxyOptions } from 'vite'

/** `/hub`, WebSocket included, carried to the hub: one origin for the page and the hub. */
export function hubProxy(target: string): Record<string, ProxyOptions> {
  return { '/hub': { target, ws: true, changeOrigin: true } }
}

/** A socket that the other side closed: a tab closed or reloaded, or a hub stopped. */
const hangUps = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])

/**
 * Vite's logger, less the stack trace its proxy prints for every WebSocket whose browser tab went
 * away (`ws proxy error: ECONNRESET`, `ws proxy socket error: EPIPE`): that is a connection ending,
 * not an error. A hub that cannot be reached (ECONNREFUSED) and every other error still show.
 */
export function quietProxyLogger(logger: Logger = createLogger()): Logger {
  const error = logger.error.bind(logger)
  logger.error = (message, options) => {
    const code = (options?.error as { code?: string } | null | undefined)?.code
    if (message.includes('ws proxy') && code !== undefined && hangUps.has(code)) return
    error(message, options)
  }
  return logger
}
