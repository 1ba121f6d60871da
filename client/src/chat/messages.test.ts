import { describe, expect, it } from 'vitest'
import { lastContiguousSeq, mergeMessages, type RoomMessage } from './messages'

const m = (seq: number, text = `m${seq}`, clientId?: string): RoomMessage => ({
  room: 'lobby', seq, from: 'Ada', text, at: '2026-11-23T10:00:00Z', ...(clientId ? { clientId } : {}),
})

describe('mergeMessages', () => {
  it('orders messages by the room sequence, whatever order they arrive in', () => {
    const merged = [m(3), m(1), m(2)].reduce<RoomMessage[]>((list, message) => mergeMessages(list, [message]), [])

    expect(merged.map((x) => x.seq)).toEqual([1, 2, 3])
  })

  it('keeps each sequence number once when a message is delivered twice', () => {
    const merged = mergeMessages(mergeMessages([m(1), m(2)], [m(2)]), [m(1), m(3)])

    expect(merged.map((x) => x.seq)).toEqual([1, 2, 3])
  })

  it('merges a join snapshot with live messages that overtook it', () => {
    const live = [m(51), m(52)]
    const history = Array.from({ length: 50 }, (_, i) => m(i + 2))

    const merged = mergeMessages(live, history)

    expect(merged.map((x) => x.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 2))
  })

  it('keeps the sender client id a live copy carries when the history copy has none', () => {
    const merged = mergeMessages(mergeMessages([], [m(1, 'hi')]), [m(1, 'hi', 'c-1')])

    expect(merged).toEqual([m(1, 'hi', 'c-1')])
  })

  it('returns the same list when nothing new arrived, so React does not re-render', () => {
    const list = [m(1), m(2)]

    expect(mergeMessages(list, [m(2)])).toBe(list)
    expect(mergeMessages(list, [])).toBe(list)
  })
})

describe('lastContiguousSeq', () => {
  it('is 0 for an empty room', () => {
    expect(lastContiguousSeq([])).toBe(0)
  })

  it('counts from the first message, since a history starts part-way', () => {
    expect(lastContiguousSeq([m(51), m(52), m(53)])).toBe(53)
  })

  it('stops before a hole, so a message that overtook a missing one does not hide it', () => {
    expect(lastContiguousSeq([m(1), m(2), m(4), m(5)])).toBe(2)
  })
})
