import { describe, expect, it } from 'vitest'
import { loadSession, restoredState, saveSession } from './saved'
import { initialState, type ChatState } from './state'

function memoryStorage(): Storage {
  const items = new Map<string, string>()
  return {
    get length() { return items.size },
    clear: () => items.clear(),
    getItem: (k) => items.get(k) ?? null,
    key: (i) => [...items.keys()][i] ?? null,
    removeItem: (k) => void items.delete(k),
    setItem: (k, v) => void items.set(k, v),
  }
}

const me = { name: 'Ada', sessionId: 's1', token: 't1' }
const room = (name: string, joined = true) => ({ name, joined, members: ['Ada'], messages: [{ room: name, seq: 1, from: 'Ada', text: 'hi', at: '' }] })

describe('the session a tab keeps across a reload', () => {
  it('keeps the token and the joined rooms, not the messages, and gives them back signed in', () => {
    const storage = memoryStorage()
    const state: ChatState = { ...initialState, me, rooms: { lobby: room('lobby'), gone: room('gone', false), dev: room('dev') }, active: 'dev' }
    saveSession(storage, state)

    const saved = loadSession(storage)
    expect(saved).toEqual({ me, rooms: ['lobby', 'dev'], active: 'dev' })
    expect(storage.getItem('chat_session')).not.toContain('hi')
    const restored = restoredState(initialState, saved)
    expect(restored.me).toEqual(me)
    expect(restored.active).toBe('dev')
    expect(Object.values(restored.rooms)).toEqual([
      { name: 'lobby', joined: true, members: [], messages: [] },
      { name: 'dev', joined: true, members: [], messages: [] },
    ])
  })

  it('forgets the session when the page is signed out', () => {
    const storage = memoryStorage()
    saveSession(storage, { me, rooms: {}, active: null })
    saveSession(storage, { me: null, rooms: {}, active: null })
    expect(loadSession(storage)).toBeNull()
    expect(restoredState(initialState, null)).toBe(initialState)
  })

  it('ignores what it cannot read', () => {
    for (const junk of ['{', '42', '{"me":{"name":"Ada"}}', '{"me":null}']) {
      const storage = memoryStorage()
      storage.setItem('chat_session', junk)
      expect(loadSession(storage)).toBeNull()
    }
    const storage = memoryStorage()
    storage.setItem('chat_session', JSON.stringify({ me, rooms: ['a', 7], active: 'elsewhere' }))
    expect(loadSession(storage)).toEqual({ me, rooms: ['a'], active: null })
  })
})
