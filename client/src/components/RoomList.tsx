import { useState, type FormEvent } from 'react'
import type { Outgoing, RoomState } from '../chat/state'
import { checkRoom } from '../chat/validation'

interface Props {
  rooms: RoomState[]
  active: string | null
  joining: string[]
  joinFailure?: Outgoing
  leaveFailures: Outgoing[]
  onSelect(room: string): void
  onJoin(room: string): void
}

export function RoomList({ rooms, active, joining, joinFailure, leaveFailures, onSelect, onJoin }: Props) {
  const [draft, setDraft] = useState('')
  const [attempted, setAttempted] = useState(false)
  const verdict = checkRoom(draft)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setAttempted(true)
    if (verdict) return
    onJoin(draft.trim())
    setDraft('')
    setAttempted(false)
  }

  return (
    <nav className="rooms" aria-label="rooms">
      <h2>Rooms</h2>
      <ul>
        {rooms.map((room) => (
          <li key={room.name} className={[room.name === active ? 'active' : '', room.joined ? '' : 'left'].join(' ').trim() || undefined}>
            {/* Leave and Join again are in the room's own header: one control per room. */}
            <button type="button" className="room-name" onClick={() => onSelect(room.name)} aria-current={room.name === active}>
              # {room.name}{!room.joined && <span className="hint"> (left)</span>}
            </button>
            {room.name !== active && leaveFailures.filter((f) => f.room === room.name).map((f) => (
              <p key={f.ref} className="field-error" role="alert">{f.error}</p>
            ))}
          </li>
        ))}
        {joining.filter((name) => !rooms.some((r) => r.name === name)).map((name) => (
          <li key={name} className="joining"># {name} <span className="hint">joining…</span></li>
        ))}
      </ul>
      <form onSubmit={submit} className="new-room" noValidate>
        <label htmlFor="new-room">New room</label>
        <div className="row">
          <input id="new-room" value={draft} placeholder="e.g. lobby" onChange={(e) => setDraft(e.target.value)}
            aria-invalid={attempted && !!verdict} />
          <button type="submit">Join</button>
        </div>
        {attempted && verdict && <p className="field-error" role="alert">{verdict}</p>}
        {joinFailure && <p className="field-error" role="alert">{joinFailure.room}: {joinFailure.error}</p>}
      </form>
    </nav>
  )
}
