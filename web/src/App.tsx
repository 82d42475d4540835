import type { User } from '@chatd-edge/sdk';
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { client, errorText, isUnauthorized } from './api';
import { ChatList } from './components/ChatList';
import { Link } from './components/Link';
import { Login, Setup } from './components/Auth';
import { NewChat } from './components/NewChat';
import { prefetchChat } from './chat-data';
import { navigate, parseRoute, useRoute } from './router';

// Screens most visits never open are separate chunks (the initial JS budget is 150 KB gzipped).
// The chat view carries the Markdown renderer and sanitizer (marked, DOMPurify).
const loadChatView = () => import('./components/ChatView');
const ChatView = lazy(loadChatView);
const Settings = lazy(() => import('./components/Settings'));
const Admin = lazy(() => import('./admin/Admin'));

// Opened on a chat's URL: fetch the chat view's chunk and the chat's data now, beside the session check.
const first = parseRoute(location.pathname);
if (first.name === 'chat') {
  void loadChatView();
  prefetchChat(first.id);
}

type Session = { state: 'loading' } | { state: 'out' } | { state: 'in'; user: User } | { state: 'failed'; error: string };

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session>({ state: 'loading' });
  const [listVersion, setListVersion] = useState(0);

  const loadMe = useCallback(async () => {
    try {
      setSession({ state: 'in', user: await client.me() });
    } catch (e) {
      setSession(isUnauthorized(e) ? { state: 'out' } : { state: 'failed', error: errorText(e) });
    }
  }, []);
  useEffect(() => {
    void loadMe();
  }, [loadMe]);
  // Once signed in, fetch the chat view's chunk while the reader looks at the list: opening a chat then waits only
  // for its data.
  useEffect(() => {
    if (session.state === 'in') void loadChatView();
  }, [session.state]);

  const logout = async () => {
    try {
      await client.logout();
    } finally {
      setSession({ state: 'out' });
      navigate('/login');
    }
  };

  if (session.state === 'loading') return <p className="center" aria-live="polite">Loading…</p>;
  if (session.state === 'failed') return <p className="center error" role="alert">{session.error}</p>;
  if (session.state === 'out') {
    const done = () => {
      navigate('/');
      void loadMe();
    };
    return route.name === 'setup' ? <Setup onDone={done} /> : <Login onDone={done} />;
  }

  const user = session.user;
  const isOwner = user.roles.includes('owner');
  const refreshList = () => {
    setListVersion((v) => v + 1);
  };
  return (
    <div className={`shell ${route.name === 'chat' ? 'in-chat' : ''}`}>
      <header className="topbar">
        <Link href="/" className="brand">
          chatd-edge
        </Link>
        <nav aria-label="Main">
          <Link href="/">New chat</Link>
          <Link href="/settings">Settings</Link>
          {isOwner && <Link href="/admin">Admin</Link>}
          <a href="/api/v2/docs" target="_blank" rel="noreferrer">
            API docs
          </a>
          <button type="button" className="link" onClick={() => void logout()}>
            Log out <span className="who">({user.username})</span>
          </button>
        </nav>
      </header>
      <aside className="sidebar">
        <ChatList version={listVersion} activeId={route.name === 'chat' ? route.id : null} />
      </aside>
      <main className="content">
        <Suspense fallback={<p aria-live="polite">Loading…</p>}>
          {route.name === 'chat' && <ChatView key={route.id} chatId={route.id} onChange={refreshList} />}
          {route.name === 'settings' && <Settings />}
          {route.name === 'admin' &&
            (isOwner ? (
              <Admin currentUserId={user.id} />
            ) : (
              <p role="alert" className="error">
                Only owners can open the admin screens.
              </p>
            ))}
          {(route.name === 'home' || route.name === 'login' || route.name === 'setup') && <NewChat onCreated={refreshList} />}
        </Suspense>
      </main>
    </div>
  );
}
