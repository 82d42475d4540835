import type { User } from '@chatd-edge/sdk';
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import type { ChatStatus } from '@chatd-edge/sdk';
import { client, errorText, isUnauthorized, onSessionEnded } from './api';
import { ChatList } from './components/ChatList';
import { SharedList } from './components/SharedList';
import { ImportButton } from './components/ConversationTools';
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
// Insights carries its chart library (uPlot): loaded only on that screen.
const Insights = lazy(() => import('./admin/Insights'));
const SharedPage = lazy(() => import('./components/SharedPage'));

// Opened on a chat's URL: fetch the chat view's chunk and the chat's data now, beside the session check.
const first = parseRoute(location.pathname);
if (first.name === 'chat') {
  void loadChatView();
  prefetchChat(first.id);
}

type Session = { state: 'loading' } | { state: 'out'; ended?: boolean } | { state: 'in'; user: User } | { state: 'failed'; error: string };

/** Where to come back to after the login, when a session ended on a screen of the app. */
const RETURN_KEY = 'chatd.returnTo';

const TITLES: Record<string, string> = { home: 'New chat', settings: 'Settings', admin: 'Admin', insights: 'Insights', login: 'Log in', setup: 'Set up' };

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session>({ state: 'loading' });
  const [listVersion, setListVersion] = useState(0);
  const [live, setLive] = useState<{ id: string; status: ChatStatus } | null>(null);
  const [chatTitle, setChatTitle] = useState('');
  const [sidebarOpen, setSidebarOpen] = useState(false);

  const loadMe = useCallback(async () => {
    try {
      setSession({ state: 'in', user: await client.me() });
    } catch (e) {
      if (!isUnauthorized(e)) {
        setSession({ state: 'failed', error: errorText(e) });
        return;
      }
      // An empty deployment opens on Setup, not on a login nobody can pass.
      const needed = await client.firstUserNeeded().then(
        (r) => r.needed,
        () => false,
      );
      if (needed) navigate('/setup');
      setSession({ state: 'out' });
    }
  }, []);
  useEffect(() => {
    void loadMe();
  }, [loadMe]);
  // A session revoked or expired while the app is open: to the login, and back to this screen after it.
  useEffect(
    () =>
      onSessionEnded(() => {
        setSession((s) => {
          if (s.state !== 'in') return s;
          if (location.pathname !== '/login' && location.pathname !== '/setup') sessionStorage.setItem(RETURN_KEY, location.pathname);
          navigate('/login');
          return { state: 'out', ended: true };
        });
      }),
    [],
  );
  // One title per screen (the open chat's own title in a chat).
  useEffect(() => {
    const name = route.name === 'chat' ? chatTitle || 'Chat' : session.state === 'out' ? (route.name === 'setup' ? 'Set up' : 'Log in') : (TITLES[route.name] ?? 'New chat');
    document.title = `${name} · chatd-edge`;
  }, [route, chatTitle, session.state]);
  useEffect(() => {
    setSidebarOpen(false);
  }, [route]);
  const openChatId = route.name === 'chat' ? route.id : null;
  const onStatus = useCallback(
    (status: ChatStatus) => {
      if (openChatId) setLive((prev) => (prev?.id === openChatId && prev.status === status ? prev : { id: openChatId, status }));
    },
    [openChatId],
  );
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

  // A share link's page needs no session.
  if (route.name === 'shared') {
    return (
      <Suspense fallback={<p aria-live="polite">Loading…</p>}>
        <SharedPage token={route.token} />
      </Suspense>
    );
  }
  if (session.state === 'loading') return <p className="center" aria-live="polite">Loading…</p>;
  if (session.state === 'failed') return <p className="center error" role="alert">{session.error}</p>;
  if (session.state === 'out') {
    const done = () => {
      const back = sessionStorage.getItem(RETURN_KEY);
      sessionStorage.removeItem(RETURN_KEY);
      navigate(back ?? '/');
      void loadMe();
    };
    return route.name === 'setup' ? <Setup onDone={done} /> : <Login onDone={done} ended={session.ended === true} />;
  }

  const user = session.user;
  const isOwner = user.roles.includes('owner');
  const refreshList = () => {
    setListVersion((v) => v + 1);
  };
  return (
    <div className={`shell ${route.name === 'chat' ? 'in-chat' : ''} ${sidebarOpen ? 'sidebar-open' : ''}`}>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <button
          type="button"
          className="icon menu-toggle"
          aria-label={sidebarOpen ? 'Hide chats' : 'Show chats'}
          aria-expanded={sidebarOpen}
          aria-controls="sidebar"
          onClick={() => setSidebarOpen((o) => !o)}
        >
          ☰
        </button>
        <Link href="/" className="brand">
          chatd-edge
        </Link>
        <nav aria-label="Main">
          <Link href="/" className="button-link">
            New chat
          </Link>
          <ImportButton />
          <Link href="/settings">Settings</Link>
          {isOwner && <Link href="/admin">Admin</Link>}
          <a href="/api/v2/docs" target="_blank" rel="noreferrer" className="wide-only">
            API docs
          </a>
          {/* Slot "topbar": insights and other screens add their links here. */}
          {isOwner && <Link href="/insights">Insights</Link>}
          <button type="button" className="link" onClick={() => void logout()}>
            Log out <span className="who">({user.username})</span>
          </button>
        </nav>
      </header>
      <aside className="sidebar" id="sidebar" aria-label="Chats">
        <ChatList version={listVersion} activeId={route.name === 'chat' ? route.id : null} live={live} onChanged={refreshList} />
        <SharedList version={listVersion} activeId={route.name === 'chat' ? route.id : null} />
      </aside>
      <main className="content" id="main" tabIndex={-1}>
        <Suspense fallback={<p aria-live="polite">Loading…</p>}>
          {route.name === 'chat' && (
            <ChatView
              key={route.id}
              chatId={route.id}
              onChange={refreshList}
              onStatus={onStatus}
              onTitle={setChatTitle}
              isOwner={isOwner}
            />
          )}
          {route.name === 'settings' && <Settings />}
          {route.name === 'admin' &&
            (isOwner ? (
              <Admin currentUserId={user.id} />
            ) : (
              <p role="alert" className="error">
                Only owners can open the admin screens.
              </p>
            ))}
          {route.name === 'insights' &&
            (isOwner ? (
              <Insights />
            ) : (
              <p role="alert" className="error">
                Only owners can open Insights.
              </p>
            ))}
          {(route.name === 'home' || route.name === 'login' || route.name === 'setup') && <NewChat onCreated={refreshList} />}
        </Suspense>
      </main>
    </div>
  );
}
