import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { connectGateway } from './gateway/gateway'
import { takeAccessToken } from './gateway/token'
import './styles.css'

// The hub's address: `/hub` on this page's origin unless the page was built with another.
const token = takeAccessToken(window.location, window.sessionStorage, window.history)
const gateway = connectGateway({
  url: import.meta.env.VITE_HUB_URL || undefined,
  accessToken: token ? () => token : undefined,
  // Built with VITE_STATEFUL_RECONNECT=true where every connection reaches one hub instance.
  statefulReconnect: import.meta.env.VITE_STATEFUL_RECONNECT === 'true',
})
void gateway.connect()

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App gateway={gateway} storage={window.sessionStorage} />
  </StrictMode>,
)
