/**
 * The bearer token for a hub that requires one (`Auth:*` on Hub.Front). It arrives in the page's
 * fragment, `#access_token=…`, as identity providers hand tokens to single-page apps (the
 * fragment never reaches a server), and is kept for this tab only. No token: demo mode.
 */
export function takeAccessToken(location: Pick<Location, 'hash' | 'pathname' | 'search'>, storage: Pick<Storage, 'getItem' | 'setItem'>, history?: Pick<History, 'replaceState'>): string | undefined {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''))
  const given = fragment.get('access_token')
  if (given) {
    storage.setItem('access_token', given)
    // Out of the address bar, so it is not bookmarked or shared by accident.
    history?.replaceState(null, '', location.pathname + location.search)
    return given
  }
  return storage.getItem('access_token') ?? undefined
}
