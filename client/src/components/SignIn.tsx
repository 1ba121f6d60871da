import { useState, type FormEvent } from 'react'
import type { Outgoing } from '../chat/state'
import { checkName, maxNameLength } from '../chat/validation'

interface Props {
  pending: boolean
  failure?: Outgoing
  onSignIn(name: string): void
}

export function SignIn({ pending, failure, onSignIn }: Props) {
  const [name, setName] = useState('')
  const [attempted, setAttempted] = useState(false)
  const verdict = checkName(name)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setAttempted(true)
    if (!verdict) onSignIn(name)
  }

  return (
    <form className="card sign-in" onSubmit={submit} noValidate>
      <h2>Sign in</h2>
      <label htmlFor="name">Your name</label>
      <input id="name" value={name} autoFocus autoComplete="nickname" maxLength={maxNameLength * 2}
        onChange={(e) => setName(e.target.value)} aria-invalid={attempted && !!verdict} />
      {attempted && verdict && <p className="field-error" role="alert">{verdict}</p>}
      {failure && <p className="field-error" role="alert">{failure.error}</p>}
      <button type="submit" disabled={pending}>{pending ? 'Signing in…' : 'Sign in'}</button>
    </form>
  )
}
