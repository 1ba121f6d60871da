import { useEffect, useRef, useState, type KeyboardEvent } from 'react'
import { inDoubt, type Outgoing, type RoomState } from '../chat/state'
import { checkText, maxTextLength } from '../chat/validation'
import { waitingAfterMs } from './WaitingBanner'
import { useNow } from './useNow'

interface Props {
  room: RoomState
  me: string
  outgoing: Outgoing[]
  leaveFailure?: Outgoing
  onSay(text: string): void
  onJoin(): void
  onLeave(): void
  onDismiss(ref: string): void
}

function time(at: string): string {
  const date = new Date(at)
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

export function RoomView({ room, me, outgoing, leaveFailure, onSay, onJoin, onLeave, onDismiss }: Props) {
  const [text, setText] = useState('')
  const [attempted, setAttempted] = useState(false)
  const verdict = checkText(text)
  const showVerdict = verdict !== null && (attempted || text.length > maxTextLength)
  const pending = outgoing.filter((o) => o.type === 'say' && o.room === room.name)
  const now = useNow(pending.some((o) => o.state === 'accepted'))
  const list = useRef<HTMLOListElement>(null)
  const following = useRef(true)

  // The waiting bar floats over the foot of the list, which then makes room under the last message.
  const waiting = pending.some((o) => o.state === 'accepted' && now - o.since >= waitingAfterMs)

  // Follow new messages only while the person is at the bottom, not while reading history.
  useEffect(() => {
    if (following.current && list.current) list.current.scrollTop = list.current.scrollHeight
  }, [room.messages.length, pending.length, waiting])
  const onScroll = () => {
    const l = list.current
    if (l) following.current = l.scrollHeight - l.scrollTop - l.clientHeight < 40
  }

  const send = () => {
    setAttempted(true)
    if (verdict) return
    onSay(text)
    setText('')
    setAttempted(false)
  }

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault()
      send()
    }
  }

  return (
    <section className="room" aria-label={`room ${room.name}`}>
      <header className="room-header">
        <h2># {room.name}</h2>
        {room.joined
          ? <button type="button" className="secondary" onClick={onLeave}>Leave room</button>
          : <button type="button" onClick={onJoin}>Join again</button>}
      </header>
      {leaveFailure && <p className="field-error" role="alert">{leaveFailure.error}</p>}
      <div className="room-body">
        <ol className="messages" role="log" aria-label="messages" ref={list} onScroll={onScroll}>
          {room.messages.length === 0 && pending.length === 0 && <li className="hint">No messages yet. Say hello.</li>}
          {room.messages.map((m) => (
            <li key={m.seq} className={m.from === me ? 'message mine' : 'message'} data-seq={m.seq}>
              <span className="meta">
                <span className="from">{m.from}</span> <time dateTime={m.at}>{time(m.at)}</time>
              </span>
              <span className="text">{m.text}</span>
            </li>
          ))}
          {pending.map((o) => (
            <li key={o.ref} className={`message mine pending pending-${o.state}`} data-pending={o.state}>
              <span className="meta">
                <span className="from">{me}</span>{' '}
                <span className="state">
                  {o.state === 'sending' && 'sending…'}
                  {o.state === 'accepted' && (now - o.since >= waitingAfterMs ? 'queued, waiting for workers…' : 'sent')}
                  {o.state === 'failed' && (inDoubt(o) ? 'may not have been sent' : 'not sent')}
                </span>
              </span>
              <span className="text">{o.text}</span>
              {o.state === 'failed' && (
                <span className="field-error" role="alert">
                  {o.error} <button type="button" className="small" onClick={() => onDismiss(o.ref)}>Dismiss</button>
                </span>
              )}
            </li>
          ))}
        </ol>
        <aside className="members" aria-label="members">
          <h3>Members ({room.members.length})</h3>
          <ul>
            {room.members.map((name, i) => (
              <li key={`${name}-${i}`}>{name}{name === me ? ' (you)' : ''}</li>
            ))}
          </ul>
        </aside>
      </div>
      {room.joined ? (
        <div className="composer">
          <textarea aria-label="message" placeholder={`Message #${room.name} (Enter sends, Shift+Enter for a new line)`}
            value={text} rows={2} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown}
            aria-invalid={showVerdict} />
          <button type="button" onClick={send}>Send</button>
          <div className="composer-status">
            {showVerdict && <span className="field-error" role="alert">{verdict}</span>}
            <span className={text.length > maxTextLength ? 'count over' : 'count'}>{text.length}/{maxTextLength}</span>
          </div>
        </div>
      ) : (
        <p className="hint">You left this room. Join it again to chat.</p>
      )}
    </section>
  )
}
