import { describe, expect, it } from 'vitest'
import { chatReducer, failureOf, initialState, waitingForWorkers, type ChatAction, type ChatState } from './state'

const run = (...actions: ChatAction[]): ChatState => actions.reduce(chatReducer, initialState)
const event = (type: string, payload: unknown): ChatAction => ({ kind: 'event', type, payload })
const signedIn = [
  { kind: 'sending', ref: 's', type: 'signIn', at: 0 },
  { kind: 'accepted', ref: 's', seq: 2 },
  event('signedIn', { name: 'Ada', sessionId: 'id', token: 't' }),
] satisfies ChatAction[]
const inLobby = [
  ...signedIn,
  { kind: 'sending', ref: 'j', type: 'join', room: 'lobby', at: 0 },
  { kind: 'accepted', ref: 'j', seq: 3 },
  event('joined', { room: 'lobby', members: ['Ada'], history: [], lastSeq: 0 }),
] satisfies ChatAction[]
const message = (seq: number, text: string, extra: object = {}) =>
  event('message', { room: 'lobby', seq, from: 'Ada', text, at: '2026-11-23T10:00:00Z', ...extra })

describe('chat state', () => {
  it('signs in and joins a room, which becomes the active one', () => {
    const state = run(...inLobby)

    expect(state.me?.name).toBe('Ada')
    expect(state.active).toBe('lobby')
    expect(state.rooms.lobby).toMatchObject({ joined: true, members: ['Ada'] })
    expect(state.outgoing).toEqual([])
  })

  it('shows a sent message as waiting for workers until its own message comes back', () => {
    const accepted = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'hi', at: 0 },
      { kind: 'accepted', ref: 'c1', seq: 4 })

    expect(waitingForWorkers(accepted).map((o) => o.text)).toEqual(['hi'])

    const answered = chatReducer(accepted, message(1, 'hi', { clientId: 'c1' }))
    expect(waitingForWorkers(answered)).toEqual([])
    expect(answered.rooms.lobby.messages.map((m) => m.text)).toEqual(['hi'])
  })

  it('puts a worker error next to the event that caused it, by its sequence number', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'hi', at: 0 },
      { kind: 'accepted', ref: 'c1', seq: 4 },
      event('error', { code: 'not_in_room', message: "You are not in room 'lobby'; join it first.", seq: 4, type: 'say' }))

    expect(state.outgoing).toMatchObject([{ ref: 'c1', state: 'failed', error: "You are not in room 'lobby'; join it first." }])
    expect(waitingForWorkers(state)).toEqual([])
  })

  it('keeps a hub refusal on the input that caused it until the next attempt', () => {
    const refused = run(...signedIn,
      { kind: 'sending', ref: 'j1', type: 'join', room: 'x', at: 0 },
      { kind: 'rejected', ref: 'j1', message: 'The broker is unavailable.' })
    expect(failureOf(refused, 'join')?.error).toBe('The broker is unavailable.')

    const retried = chatReducer(refused, { kind: 'sending', ref: 'j2', type: 'join', room: 'x', at: 1 })
    expect(failureOf(retried, 'join')).toBeUndefined()
  })

  it('merges a join snapshot with messages that arrived before it, each once and in order', () => {
    const state = run(...signedIn,
      { kind: 'sending', ref: 'j', type: 'join', room: 'lobby', at: 0 },
      message(3, 'three'),
      event('joined', { room: 'lobby', members: ['Bob', 'Ada'], lastSeq: 3, history: [
        { room: 'lobby', seq: 2, from: 'Bob', text: 'two', at: '' },
        { room: 'lobby', seq: 3, from: 'Bob', text: 'three', at: '' }] }),
      message(3, 'three'))

    expect(state.rooms.lobby.messages.map((m) => m.seq)).toEqual([2, 3])
  })

  it('tracks who is in the room as members come and go', () => {
    const state = run(...inLobby,
      event('memberJoined', { room: 'lobby', name: 'Bob' }),
      event('memberJoined', { room: 'lobby', name: 'Bob' }),
      event('memberJoined', { room: 'lobby', name: 'Cy' }),
      event('memberLeft', { room: 'lobby', name: 'Ada' }))

    expect(state.rooms.lobby.members).toEqual(['Bob', 'Cy'])
  })

  it('marks a left room as not joined and keeps its history', () => {
    const state = run(...inLobby, message(1, 'hi'),
      { kind: 'sending', ref: 'l', type: 'leave', room: 'lobby', at: 0 },
      event('left', { room: 'lobby' }))

    expect(state.rooms.lobby).toMatchObject({ joined: false, members: [] })
    expect(state.rooms.lobby.messages).toHaveLength(1)
    expect(state.outgoing).toEqual([])
  })

  it('after a reconnect, matches a queued message by sender and text, since its reply went to the old connection', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'during the blip', at: 0 },
      { kind: 'accepted', ref: 'c1', seq: 4 },
      { kind: 'sending', ref: 'j2', type: 'join', room: 'other', at: 0 },
      { kind: 'accepted', ref: 'j2', seq: 5 },
      { kind: 'reconnected' },
      event('joined', { room: 'lobby', members: ['Ada'], lastSeq: 1, history: [
        { room: 'lobby', seq: 1, from: 'Ada', text: 'during the blip', at: '' }] }))

    expect(state.outgoing).toEqual([])
    expect(state.rooms.lobby.messages.map((m) => m.text)).toEqual(['during the blip'])
  })

  it('does not let an old connection’s seq catch the new connection’s errors', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'old', at: 0 },
      { kind: 'accepted', ref: 'c1', seq: 4 },
      { kind: 'reconnected' },
      { kind: 'sending', ref: 'j2', type: 'join', room: 'x', at: 0 },
      { kind: 'accepted', ref: 'j2', seq: 4 },
      event('error', { code: 'invalid_room', message: 'bad room', seq: 4, type: 'join' }))

    expect(state.outgoing.find((o) => o.ref === 'c1')?.state).toBe('accepted')
    expect(failureOf(state, 'join')?.error).toBe('bad room')
  })

  it('keeps a worker error that overtook the hub’s answer until the answer names its seq', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'hi', at: 0 },
      event('error', { code: 'invalid_text', message: 'too long', seq: 4, type: 'say' }),
      { kind: 'accepted', ref: 'c1', seq: 4 })

    expect(state.outgoing).toMatchObject([{ ref: 'c1', state: 'failed', error: 'too long' }])
    expect(state.notice).toBeNull()
    expect(state.early).toEqual({})
  })

  it('does not move the open room when the page rejoins rooms by itself after a reconnect', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'j2', type: 'join', room: 'second', at: 0 },
      event('joined', { room: 'second', members: ['Ada'], history: [], lastSeq: 0 }),
      { kind: 'select', room: 'lobby' },
      { kind: 'reconnected' },
      { kind: 'sending', ref: 'a1', type: 'join', room: 'lobby', at: 0, auto: true },
      { kind: 'sending', ref: 'a2', type: 'join', room: 'second', at: 0, auto: true },
      event('joined', { room: 'lobby', members: ['Ada'], history: [], lastSeq: 0 }),
      event('joined', { room: 'second', members: ['Ada'], history: [], lastSeq: 0 }))

    expect(state.active).toBe('lobby')
  })

  it('sends the person back to the sign-in form when signing in again after a reconnect fails', () => {
    const state = run(...inLobby, { kind: 'reconnected' },
      { kind: 'sending', ref: 's2', type: 'signIn', at: 0, auto: true },
      { kind: 'rejected', ref: 's2', message: 'The broker is unavailable.', code: 'broker_unavailable' })

    expect(state.me).toBeNull()
    expect(failureOf(state, 'signIn')?.error).toBe('The broker is unavailable.')
  })

  it('clears a message refused in doubt when it turns out to have arrived', () => {
    const state = run(...inLobby,
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'maybe', at: 0 },
      { kind: 'rejected', ref: 'c1', message: 'No confirm in time.', code: 'not_confirmed' },
      message(1, 'maybe', { clientId: 'c1' }))

    expect(state.outgoing).toEqual([])
    expect(state.rooms.lobby.messages.map((m) => m.text)).toEqual(['maybe'])
  })

  it('shows an error that belongs to no input as a notice', () => {
    const state = run(...inLobby, event('error', { code: 'internal_error', message: 'dropped', seq: 99 }))

    expect(state.notice).toBe('internal_error: dropped')
  })

  it('takes the session back on resume: missed messages merged once each, members replaced, pending messages answered', () => {
    const state = run(...inLobby, message(1, 'one'), message(2, 'two'),
      event('memberJoined', { room: 'lobby', name: 'Carol' }),
      { kind: 'sending', ref: 'c1', type: 'say', room: 'lobby', text: 'mine', at: 0 },
      { kind: 'accepted', ref: 'c1', seq: 5 },
      { kind: 'reconnected' },
      { kind: 'sending', ref: 'r', type: 'resume', at: 0, auto: true },
      { kind: 'accepted', ref: 'r', seq: 2 },
      event('resumed', {
        name: 'Ada', sessionId: 'id', token: 't',
        rooms: [{
          room: 'lobby', members: ['Ada', 'Bob'], complete: true, lastSeq: 4,
          messages: [
            { room: 'lobby', seq: 2, from: 'Bob', text: 'two', at: 'x' },
            { room: 'lobby', seq: 3, from: 'Bob', text: 'three', at: 'x' },
            { room: 'lobby', seq: 4, from: 'Ada', text: 'mine', at: 'x' },
          ],
        }],
      }))

    expect(state.me).toEqual({ name: 'Ada', sessionId: 'id', token: 't' })
    expect(state.rooms.lobby.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4])
    expect(state.rooms.lobby.members).toEqual(['Ada', 'Bob'])
    expect(state.outgoing).toEqual([])
  })

  it('replaces a room that missed more than the resume sends with its recent history', () => {
    const state = run(...inLobby, message(1, 'one'), { kind: 'reconnected' },
      event('resumed', {
        name: 'Ada', sessionId: 'id', token: 't',
        rooms: [{ room: 'lobby', members: ['Ada'], complete: false, lastSeq: 900, messages: [{ room: 'lobby', seq: 900, from: 'Bob', text: 'late', at: 'x' }] }],
      }))

    expect(state.rooms.lobby.messages.map((m) => m.seq)).toEqual([900])
  })

  it('keeps a live message newer than an incomplete resume’s snapshot, which overtook the snapshot', () => {
    const state = run(...inLobby, message(1, 'one'), { kind: 'reconnected' }, message(901, 'overtook'),
      event('resumed', {
        name: 'Ada', sessionId: 'id', token: 't',
        rooms: [{ room: 'lobby', members: ['Ada'], complete: false, lastSeq: 900, messages: [{ room: 'lobby', seq: 900, from: 'Bob', text: 'late', at: 'x' }] }],
      }))

    expect(state.rooms.lobby.messages.map((m) => m.seq)).toEqual([900, 901])
  })

  it('keeps the code of an error that overtook the hub’s answer', () => {
    const state = run(...inLobby, { kind: 'reconnected' },
      { kind: 'sending', ref: 'r', type: 'resume', at: 0, auto: true },
      event('error', { code: 'unknown_session', message: 'sign in again', seq: 2, type: 'resume' }),
      { kind: 'accepted', ref: 'r', seq: 2 })

    expect(state.outgoing).toMatchObject([{ type: 'resume', state: 'failed', errorCode: 'unknown_session' }])
  })

  it('marks a refused resume failed, so the page can sign in again, and keeps the person signed in meanwhile', () => {
    const state = run(...inLobby, { kind: 'reconnected' },
      { kind: 'sending', ref: 'r', type: 'resume', at: 0, auto: true },
      { kind: 'accepted', ref: 'r', seq: 2 },
      event('error', { code: 'unknown_session', message: 'sign in again', seq: 2, type: 'resume' }))

    expect(state.outgoing).toMatchObject([{ type: 'resume', state: 'failed', errorCode: 'unknown_session' }])
    expect(state.me?.name).toBe('Ada')
  })
})
