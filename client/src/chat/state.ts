import type { ConnectionStatus } from '../gateway/gateway'
import { mergeMessages, type RoomMessage } from './messages'

export type EventType = 'signIn' | 'resume' | 'join' | 'leave' | 'say'

/**
 * An event this page sent and whose answer it has not seen yet. `sending`: the hub has not
 * confirmed it; `accepted`: it is safely queued and waits for a worker; `failed`: refused, with
 * the reason shown next to what caused it.
 */
export interface Outgoing {
  ref: string
  type: EventType
  room?: string
  text?: string
  seq?: number
  state: 'sending' | 'accepted' | 'failed'
  error?: string
  /** For a refusal by the hub: its code; `not_confirmed` and `connection_lost` mean "in doubt". */
  errorCode?: string
  since: number
  /** Sent by the page itself (a rejoin after a reconnect), not by the person. */
  auto?: boolean
}

export interface RoomState {
  name: string
  joined: boolean
  members: string[]
  messages: RoomMessage[]
}

/** One room of a `resumed` event. */
interface ResumedRoom {
  room: string
  members: string[]
  /** Every message after the one the page said it saw; or, when not `complete`, the recent history. */
  messages: RoomMessage[]
  complete: boolean
  lastSeq: number
}

export interface Session {
  name: string
  sessionId: string
  token: string
}

export interface ChatState {
  status: ConnectionStatus
  me: Session | null
  rooms: Record<string, RoomState>
  active: string | null
  outgoing: Outgoing[]
  /** Something the server said that belongs to no particular input (a closing reason, say). */
  notice: string | null
  /** Worker errors that overtook the hub's answer to their Send, by seq, until that answer comes. */
  early: Record<number, { message: string; code?: string }>
}

export type ChatAction =
  | { kind: 'status'; status: ConnectionStatus }
  | { kind: 'sending'; ref: string; type: EventType; room?: string; text?: string; at: number; auto?: boolean }
  | { kind: 'accepted'; ref: string; seq: number }
  | { kind: 'rejected'; ref: string; message: string; code?: string }
  | { kind: 'event'; type: string; payload: unknown }
  | { kind: 'reconnected' }
  | { kind: 'select'; room: string }
  | { kind: 'dismiss'; ref: string }
  | { kind: 'dismissNotice' }

export const initialState: ChatState = {
  status: 'disconnected',
  me: null,
  rooms: {},
  active: null,
  outgoing: [],
  notice: null,
  early: {},
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.kind) {
    case 'status':
      return { ...state, status: action.status }
    case 'sending': {
      // A new attempt replaces the failed ones of its kind, so one reason shows per input.
      const outgoing = state.outgoing.filter((o) => !(o.state === 'failed' && o.type === action.type && o.type !== 'say'))
      const item: Outgoing = {
        ref: action.ref, type: action.type, room: action.room, text: action.text, state: 'sending', since: action.at, auto: action.auto,
      }
      return { ...state, outgoing: [...outgoing, item] }
    }
    case 'accepted': {
      const early = state.early[action.seq]
      if (early !== undefined) {
        const { [action.seq]: _, ...rest } = state.early
        void _
        return fail({ ...state, early: rest }, (o) => o.ref === action.ref, early.message, early.code)
      }
      return updateOutgoing(state, (o) => o.ref === action.ref && o.state === 'sending', (o) => ({ ...o, state: 'accepted', seq: action.seq }))
    }
    case 'rejected':
      return fail(state, (o) => o.ref === action.ref, action.message, action.code)
    case 'dismiss':
      return { ...state, outgoing: state.outgoing.filter((o) => o.ref !== action.ref) }
    case 'dismissNotice':
      return { ...state, notice: null }
    case 'select':
      return { ...state, active: action.room }
    case 'reconnected':
      // The new connection starts empty: answers to what the old one sent will not come to it,
      // except room messages, which reach the room and are matched by sender and text. Its
      // seqs start again at 1, so the old ones must not catch the new connection's errors.
      return {
        ...state,
        status: 'connected',
        notice: null,
        early: {},
        outgoing: state.outgoing
          .filter((o) => o.type === 'say' || o.state === 'failed')
          .map((o) => ({ ...o, seq: undefined })),
      }
    case 'event':
      return applyEvent(state, action.type, action.payload)
  }
}

function applyEvent(state: ChatState, type: string, payload: unknown): ChatState {
  const p = (payload ?? {}) as Record<string, unknown>
  switch (type) {
    case 'signedIn': {
      const me = { name: String(p.name), sessionId: String(p.sessionId), token: String(p.token) }
      return { ...answer(state, (o) => o.type === 'signIn'), me }
    }
    case 'resumed': {
      // The session is back on this connection: its rooms with what was missed (or, when too much
      // was, the recent history to show instead) and who is there now.
      const me = { name: String(p.name), sessionId: String(p.sessionId), token: String(p.token) }
      let next: ChatState = { ...answer(state, (o) => o.type === 'resume'), me }
      for (const r of (p.rooms as ResumedRoom[] | undefined) ?? []) {
        const existing = next.rooms[r.room]
        // Incomplete: the history replaces what the page shows, except live messages newer than
        // the snapshot (the connection was in the room's group before the snapshot was taken).
        const kept = r.complete ? (existing?.messages ?? []) : (existing?.messages ?? []).filter((m) => m.seq > r.lastSeq)
        const messages = mergeMessages(kept, r.messages)
        next = withRoom(next, { name: r.room, joined: true, members: r.members, messages })
        for (const message of r.messages) next = answer(next, mineFor(next, message))
      }
      return next
    }
    case 'joined': {
      const room = String(p.room)
      const history = (p.history as RoomMessage[] | undefined) ?? []
      const existing = state.rooms[room]
      const next: RoomState = {
        name: room,
        joined: true,
        members: (p.members as string[] | undefined) ?? [],
        messages: mergeMessages(existing?.messages ?? [], history),
      }
      const asked = state.outgoing.some((o) => o.type === 'join' && o.room === room && !o.auto)
      let answered = answer(withRoom(state, next), (o) => o.type === 'join' && o.room === room)
      // What this page sent before a reconnect may come back only in the history.
      for (const message of history) answered = answer(answered, mineFor(answered, message))
      return { ...answered, active: asked || state.active === null ? room : state.active }
    }
    case 'left': {
      const room = state.rooms[String(p.room)]
      const answered = answer(state, (o) => o.type === 'leave' && o.room === String(p.room))
      return room ? withRoom(answered, { ...room, joined: false, members: [] }) : answered
    }
    case 'memberJoined': {
      const room = state.rooms[String(p.room)]
      const name = String(p.name)
      if (!room || room.members.includes(name)) return state
      return withRoom(state, { ...room, members: [...room.members, name] })
    }
    case 'memberLeft': {
      const room = state.rooms[String(p.room)]
      if (!room) return state
      const at = room.members.indexOf(String(p.name))
      if (at < 0) return state
      return withRoom(state, { ...room, members: room.members.filter((_, i) => i !== at) })
    }
    case 'message': {
      const message = p as unknown as RoomMessage
      const room = state.rooms[message.room] ?? { name: message.room, joined: true, members: [], messages: [] }
      const merged = withRoom(state, { ...room, messages: mergeMessages(room.messages, [message]) })
      return answer(merged, mineFor(state, message))
    }
    case 'error': {
      const seq = Number(p.seq)
      const message = String(p.message)
      const code = typeof p.code === 'string' ? p.code : undefined
      if (state.outgoing.some((o) => o.seq === seq && o.state === 'accepted')) {
        return fail(state, (o) => o.seq === seq && o.state === 'accepted', message, code)
      }
      // The worker can answer before the hub has told this page the event's seq.
      if (Number.isInteger(seq) && state.outgoing.some((o) => o.state === 'sending')) {
        return { ...state, early: { ...state.early, [seq]: { message, code } } }
      }
      return { ...state, notice: `${String(p.code)}: ${message}` }
    }
    default:
      return state
  }
}

/**
 * The pending `say` a room message answers: by its clientId, else (its reply went to a connection
 * that is gone) by sender and text. A `say` that failed in doubt (no confirm, connection lost)
 * may still arrive, and then it is answered too, so the person does not send it again.
 */
function mineFor(state: ChatState, message: RoomMessage): (o: Outgoing) => boolean {
  if (message.clientId) return (o) => o.type === 'say' && o.ref === message.clientId
  return (o) =>
    o.type === 'say' && o.state !== 'sending' && o.seq === undefined && o.room === message.room && o.text === message.text && message.from === state.me?.name
}

/** Removes the oldest outgoing event that a reply answers. */
function answer(state: ChatState, answers: (o: Outgoing) => boolean): ChatState {
  const at = state.outgoing.findIndex(answers)
  if (at < 0) return state
  return { ...state, outgoing: state.outgoing.filter((_, i) => i !== at) }
}

/**
 * Marks an outgoing event refused. A sign-in refused while the page thought it was signed in
 * (signing in again after a reconnect) sends the person back to the sign-in form, where it shows.
 */
function fail(state: ChatState, match: (o: Outgoing) => boolean, error: string, errorCode?: string): ChatState {
  const failed = updateOutgoing(state, match, (o) => ({ ...o, state: 'failed', error, errorCode }))
  const signIn = failed.outgoing.some((o) => o.type === 'signIn' && o.state === 'failed' && match(o))
  return signIn && failed.me ? { ...failed, me: null } : failed
}

function updateOutgoing(state: ChatState, match: (o: Outgoing) => boolean, update: (o: Outgoing) => Outgoing): ChatState {
  let changed = false
  const outgoing = state.outgoing.map((o) => (match(o) ? ((changed = true), update(o)) : o))
  return changed ? { ...state, outgoing } : state
}

function withRoom(state: ChatState, room: RoomState): ChatState {
  return { ...state, rooms: { ...state.rooms, [room.name]: room } }
}

/** Refused by the hub without certainty: the event may still be processed. */
export function inDoubt(o: Outgoing): boolean {
  return o.errorCode === 'not_confirmed' || o.errorCode === 'connection_lost'
}

/** Events accepted by the broker that no worker has answered yet: the "waiting for workers" state. */
export function waitingForWorkers(state: ChatState): Outgoing[] {
  return state.outgoing.filter((o) => o.state === 'accepted')
}

/** The latest refusal of an input of this kind (and room), to show next to it. */
export function failureOf(state: ChatState, type: EventType, room?: string): Outgoing | undefined {
  return state.outgoing.findLast((o) => o.state === 'failed' && o.type === type && (room === undefined || o.room === room))
}
