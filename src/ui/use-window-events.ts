import { useEffect, type DependencyList } from 'react';

type WindowHandlers = { [K in keyof WindowEventMap]?: (e: WindowEventMap[K]) => void };

/** Listens to window events while the component is mounted; the handlers are taken again when `deps` change. */
export function useWindowEvents(handlers: WindowHandlers, deps: DependencyList): void {
  useEffect(() => {
    const entries = Object.entries(handlers) as [string, EventListener][];
    for (const [type, handler] of entries) window.addEventListener(type, handler);
    return () => {
      for (const [type, handler] of entries) window.removeEventListener(type, handler);
    };
    // The handlers are new objects every render: `deps` says when they really change.
  }, deps);
}
