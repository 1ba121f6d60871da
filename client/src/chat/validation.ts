// The same rules the chat worker applies (Chat.Worker/Chat/ChatRules.cs), checked before sending
// so that a person sees the reason at once; the worker still checks everything itself.

export const maxNameLength = 32
export const maxRoomLength = 32
export const maxTextLength = 4000

/** A reason the input cannot be sent, or null when it can. */
export type Verdict = string | null

const controlCharacter = /\p{Cc}/u
const roomPattern = /^[\p{L}\p{N}][\p{L}\p{N} _-]*$/u

export function checkName(raw: string): Verdict {
  const name = raw.trim()
  if (name.length === 0) return 'Enter a name.'
  if (name.length > maxNameLength) return `A name is at most ${maxNameLength} characters (this one has ${name.length}).`
  if (controlCharacter.test(name)) return 'A name cannot contain control characters.'
  return null
}

export function checkRoom(raw: string): Verdict {
  const room = raw.trim()
  if (room.length === 0) return 'Enter a room name.'
  if (room.length > maxRoomLength) return `A room name is at most ${maxRoomLength} characters (this one has ${room.length}).`
  if (!roomPattern.test(room)) return "A room name starts with a letter or digit and has only letters, digits, spaces, '-' and '_'."
  return null
}

export function checkText(raw: string): Verdict {
  if (raw.trim().length === 0) return 'Type a message first.'
  if (raw.length > maxTextLength) return `A message is at most ${maxTextLength} characters (this one has ${raw.length}).`
  return null
}
