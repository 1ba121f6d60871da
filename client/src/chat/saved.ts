import type { ChatState, Session } from './state'

/**
 * What a tab keeps across a reload (sessionStorage: this tab only, as the access token): the
 * session token and the rooms it is in. On load the page resumes that session instead of signing
 * in again, and gets each room's history back with the resume.
 */
export interface SavedSession {
  me: Session
  rooms: string[]
  active: string | null
}

const key = 'chat_session'

export function loadSession(storage: Pick<Storage, 'getItem'>): SavedSession | null {
  try {
    const saved = JSON.parse(storage.getItem(key) ?? 'null') as Partial<SavedSession> | null
    const me = saved?.me
    if (!me || typeof me.name !== 'string' || typeof me.token !== 'string' || typeof me.sessionId !== 'string') return null
    const rooms = Array.isArray(saved.rooms) ? saved.rooms.filter((r): r is string => typeof r === 'string') : []
    const active = typeof saved.active === 'string' && rooms.includes(saved.active) ? saved.active : null
    return { me: { name: me.name, token: me.token, sessionId: me.sessionId }, rooms, active }
  } catch {
    return null
  }
}

export function saveSession(storage: Pick<Storage, 'setItem' | 'removeItem'>, state: Pick<ChatState, 'me' | 'rooms' | 'active'>): void {
  if (!state.me) {
    storage.removeItem(key)
    return
  }
  const rooms = Object.values(state.rooms).filter((r) => r.joined).map((r) => r.name)
  storage.setItem(key, JSON.stringify({ me: state.me, rooms, active: state.active }))
}

/** The state a reloaded page starts from: signed in, in its rooms, which the resume fills. */
export function restoredState(initial: ChatState, saved: SavedSession | null): ChatState {
  if (!saved) return initial
  const rooms = Object.fromEntries(saved.rooms.map((name) => [name, { name, joined: true, members: [], messages: [] }]))
  return { ...initial, me: saved.me, rooms, active: saved.active ?? saved.rooms[0] ?? null }
}
