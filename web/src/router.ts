import { useEffect, useState } from 'react';

/** The screens, by path (the Worker serves index.html for every path that is not /api/* or /healthz). */
export type Route =
  | { name: 'home' }
  | { name: 'chat'; id: string }
  | { name: 'settings' }
  | { name: 'admin' }
  | { name: 'insights' }
  | { name: 'login' }
  | { name: 'setup' }
  | { name: 'shared'; token: string };

export function parseRoute(pathname: string): Route {
  const chat = /^\/chats\/([0-9a-f-]{36})$/.exec(pathname);
  if (chat?.[1]) return { name: 'chat', id: chat[1] };
  if (pathname === '/settings') return { name: 'settings' };
  if (pathname === '/admin') return { name: 'admin' };
  if (pathname === '/insights') return { name: 'insights' };
  if (pathname === '/login') return { name: 'login' };
  if (pathname === '/setup') return { name: 'setup' };
  // A share link's public page (no login).
  const shared = /^\/s\/([A-Za-z0-9_-]{1,200})$/.exec(pathname);
  if (shared?.[1]) return { name: 'shared', token: shared[1] };
  return { name: 'home' };
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

/** Goes to a path of the app without reloading the page. */
export function navigate(path: string): void {
  if (location.pathname === path) return;
  history.pushState(null, '', path);
  for (const l of listeners) l();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const l = () => {
      setRoute(parseRoute(location.pathname));
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}
