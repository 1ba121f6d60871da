import { useChat } from './chat/useChat'
import { failureOf, waitingForWorkers } from './chat/state'
import type { Gateway } from './gateway/gateway'
import { ConnectionIndicator } from './components/ConnectionIndicator'
import { RoomList } from './components/RoomList'
import { RoomView } from './components/RoomView'
import { SignIn } from './components/SignIn'
import { WaitingBanner } from './components/WaitingBanner'

export function App({ gateway, storage }: { gateway: Gateway; storage?: Storage }) {
  const [state, actions] = useChat(gateway, storage)
  const rooms = Object.values(state.rooms)
  const active = state.active ? state.rooms[state.active] : undefined
  const joining = state.outgoing.filter((o) => o.type === 'join' && o.state !== 'failed').map((o) => o.room ?? '')

  return (
    <div className="app">
      <header className="top">
        <h1>SocketStarter chat</h1>
        {state.me && <span className="me">signed in as <strong>{state.me.name}</strong></span>}
        <ConnectionIndicator status={state.status} />
        {state.status === 'disconnected' && state.me && (
          <button type="button" className="small" onClick={actions.reconnect}>Reconnect</button>
        )}
      </header>
      <WaitingBanner waiting={waitingForWorkers(state)} />
      {state.notice && (
        <p className="banner notice" role="alert">
          {state.notice} <button type="button" className="small" onClick={actions.dismissNotice}>Dismiss</button>
        </p>
      )}
      {!state.me ? (
        <SignIn
          pending={state.outgoing.some((o) => o.type === 'signIn' && o.state !== 'failed')}
          failure={failureOf(state, 'signIn')}
          onSignIn={actions.signIn}
        />
      ) : (
        <main className="layout">
          <RoomList rooms={rooms} active={state.active} joining={joining}
            joinFailure={state.outgoing.findLast((o) => o.type === 'join' && o.state === 'failed')}
            leaveFailures={state.outgoing.filter((o) => o.type === 'leave' && o.state === 'failed')}
            onSelect={actions.select} onJoin={actions.join} />
          {active ? (
            <RoomView key={active.name} room={active} me={state.me.name} outgoing={state.outgoing}
              leaveFailure={failureOf(state, 'leave', active.name)}
              onSay={(text) => actions.say(active.name, text)} onJoin={() => actions.join(active.name)}
              onLeave={() => actions.leave(active.name)} onDismiss={actions.dismiss} />
          ) : (
            <section className="room empty"><p className="hint">Join a room to start chatting: type a name under “New room”.</p></section>
          )}
        </main>
      )}
    </div>
  )
}
