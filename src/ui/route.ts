// The app's two pages, chosen by the URL hash (#/ and #/diagnostics): a bookmarkable diagnostics page that works
// from a static host with no server-side routing.
import { useSyncExternalStore } from 'react';

export type Route = 'chat' | 'diagnostics';

export const ROUTE_HASH: Record<Route, string> = { chat: '#/', diagnostics: '#/diagnostics' };

function currentRoute(): Route {
  return window.location.hash === ROUTE_HASH.diagnostics ? 'diagnostics' : 'chat';
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

export function useRoute(): Route {
  return useSyncExternalStore(subscribe, currentRoute);
}
