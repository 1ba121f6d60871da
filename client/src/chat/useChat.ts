import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react'
import { GatewayError, type Gateway } from '../gateway/gateway'
import { lastContiguousSeq } from './messages'
import { loadSession, restoredState, saveSession } from './saved'
import { chatReducer, initialState, type ChatState, type EventType } from './state'

export interface ChatActions {
  signIn(name: string): void
  join(room: string): void
  leave(room: string): void
  say(room: string, text: string): void
  select(room: string): void
  dismiss(ref: string): void
  dismissNotice(): void
  /** After the hub closed the connection for good: connect again (and sign in again). */
  reconnect(): void
}

let counter = 0
/** A page-local id for an outgoing event; for `say` it also travels as the message's clientId. */
function nextRef(): string {
  counter += 1
  return `${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}`
}

/** What a resume says was seen: per joined room, the highest seq up to its first hole. */
function lastSeenOf(rooms: ChatState['rooms']): Record<string, number> {
  return Object.fromEntries(Object.values(rooms).filter((r) => r.joined).map((r) => [r.name, lastContiguousSeq(r.messages)]))
}

/**
 * The chat over a gateway: state from the server's events, actions that send through the gateway.
 * With a storage (the tab's sessionStorage), the session and its rooms outlive a reload: the page
 * comes back signed in and resumes the session on its first connection.
 */
export function useChat(gateway: Gateway, storage?: Storage): [ChatState, ChatActions] {
  const [state, dispatch] = useReducer(chatReducer, undefined, () =>
    restoredState({ ...initialState, status: gateway.status }, storage ? loadSession(storage) : null))
  // The reconnect handler reads the state of its moment, not of the render that subscribed it.
  const latest = useRef(state)
  useEffect(() => {
    latest.current = state
  }, [state])
  // A restored session is resumed once, on the first connection; later ones resume on reconnect.
  const resumeOnConnect = useRef(state.me !== null)
  const { me, rooms, active } = state
  useEffect(() => {
    if (storage) saveSession(storage, { me, rooms, active })
  }, [storage, me, rooms, active])

  const send = useCallback(
    async (type: EventType, payload: Record<string, unknown>, ref = nextRef(), auto = false) => {
      const room = typeof payload.room === 'string' ? payload.room : undefined
      const text = typeof payload.text === 'string' ? payload.text : undefined
      dispatch({ kind: 'sending', ref, type, room, text, at: Date.now(), auto })
      try {
        const seq = await gateway.send(type, payload)
        dispatch({ kind: 'accepted', ref, seq })
      } catch (error) {
        const refusal = GatewayError.from(error)
        dispatch({ kind: 'rejected', ref, message: refusal.message, code: refusal.code })
      }
    },
    [gateway],
  )

  useEffect(() => {
    const resumeRestored = (status: string) => {
      const { me, rooms } = latest.current
      if (status !== 'connected' || !resumeOnConnect.current || !me) return
      resumeOnConnect.current = false
      void send('resume', { token: me.token, lastSeen: lastSeenOf(rooms) }, nextRef(), true)
    }
    const subscriptions = [
      gateway.onStatus((status) => {
        dispatch({ kind: 'status', status })
        resumeRestored(status)
      }),
      gateway.onAny((type, payload) => dispatch({ kind: 'event', type, payload })),
      gateway.onClosing((reason) => dispatch({ kind: 'event', type: 'error', payload: { code: 'closing', message: reason } })),
      gateway.onReconnected(() => {
        dispatch({ kind: 'reconnected' })
        // A new connection is a stranger to the workers until it resumes the session: back in its
        // rooms, with every message it missed (merged by seq, so nothing shows twice).
        const { me, rooms } = latest.current
        if (!me) return
        void send('resume', { token: me.token, lastSeen: lastSeenOf(rooms) }, nextRef(), true)
      }),
    ]
    // A status change between the first render and this subscription is not missed.
    dispatch({ kind: 'status', status: gateway.status })
    resumeRestored(gateway.status)
    return () => subscriptions.forEach((unsubscribe) => unsubscribe())
  }, [gateway, send])

  // A resume refused. The session is unknown (expired, or the workers' store was reset): sign in
  // again under the same name and rejoin the rooms; their histories come back with `joined`.
  // Already bound (an earlier resume of this connection went through after all): nothing to do,
  // its `resumed` comes. Anything else (the connection or the broker is down): try again shortly
  // while connected; a new connection resumes by itself.
  const failedResume = state.outgoing.find((o) => o.type === 'resume' && o.state === 'failed')
  const retryTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)
  useEffect(() => () => clearTimeout(retryTimer.current), [])
  useEffect(() => {
    if (!failedResume) return
    dispatch({ kind: 'dismiss', ref: failedResume.ref })
    if (failedResume.errorCode === 'already_signed_in') return
    if (failedResume.errorCode !== 'unknown_session') {
      // Not cleared when this effect re-runs (dismissing the failure re-runs it at once); only on unmount.
      retryTimer.current = setTimeout(() => {
        const { me, rooms, status } = latest.current
        if (me && status === 'connected') void send('resume', { token: me.token, lastSeen: lastSeenOf(rooms) }, nextRef(), true)
      }, 2000)
      return
    }
    const { me, rooms } = latest.current
    if (!me) return
    void (async () => {
      // The previous token: its session's old connection may still count as holding the name.
      await send('signIn', { name: me.name, previousToken: me.token }, nextRef(), true)
      for (const room of Object.values(rooms).filter((r) => r.joined)) await send('join', { room: room.name }, nextRef(), true)
    })()
  }, [failedResume, send])

  const actions = useMemo<ChatActions>(
    () => ({
      signIn: (name) => void send('signIn', { name: name.trim() }),
      join: (room) => void send('join', { room: room.trim() }),
      leave: (room) => void send('leave', { room }),
      say: (room, text) => {
        const ref = nextRef()
        void send('say', { room, text, clientId: ref }, ref)
      },
      select: (room) => dispatch({ kind: 'select', room }),
      dismiss: (ref) => dispatch({ kind: 'dismiss', ref }),
      dismissNotice: () => dispatch({ kind: 'dismissNotice' }),
      reconnect: () => void gateway.connect(),
    }),
    [gateway, send],
  )
  return [state, actions]
}
