// The app's views, chosen by the URL hash (#/, #/model, #/downloads, #/diagnostics): bookmarkable, and they work
// from a static host with no server-side routing.
import { useSyncExternalStore } from 'react';

export type Route = 'chat' | 'model' | 'downloads' | 'diagnostics';

export const ROUTE_HASH: Record<Route, string> = { chat: '#/', model: '#/model', downloads: '#/downloads', diagnostics: '#/diagnostics' };

export function currentRoute(): Route {
  const hash = window.location.hash;
  return (Object.keys(ROUTE_HASH) as Route[]).find((r) => r !== 'chat' && ROUTE_HASH[r] === hash) ?? 'chat';
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

export function useRoute(): Route {
  return useSyncExternalStore(subscribe, currentRoute);
}
