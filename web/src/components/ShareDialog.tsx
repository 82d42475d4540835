import type { ChatAcl, ShareLink } from '@chatd-edge/sdk';
import { type SyntheticEvent, useCallback, useEffect, useRef, useState } from 'react';
import { client, errorText, withTimeout } from '../api';
import { CopyButton } from './Confirm';

interface Option {
  id: string;
  name: string;
}

/**
 * Sharing a chat (docs/API.md "Groups and sharing"): users and groups as viewers (read-only, live), and share links (a
 * read-only snapshot at /s/{token}; the link is shown once). Owners of the deployment pick users and groups from lists;
 * a member (who cannot list users) gives a user's id.
 */
export function ShareDialog({ chatId, title, onClose }: { chatId: string; title: string; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [acl, setAcl] = useState<ChatAcl | null>(null);
  const [links, setLinks] = useState<ShareLink[]>([]);
  const [users, setUsers] = useState<Option[] | null>(null);
  const [groups, setGroups] = useState<Option[] | null>(null);
  const [who, setWho] = useState('');
  const [group, setGroup] = useState('');
  const [fresh, setFresh] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState('');

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const run = useCallback(async (what: () => Promise<unknown>, label: string) => {
    setPending(true);
    setError('');
    try {
      await withTimeout(what(), label);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setPending(false);
    }
  }, []);
  const reload = useCallback(async () => {
    const [a, l] = await Promise.all([client.chatAcl(chatId), client.shareLinks(chatId)]);
    setAcl(a);
    setLinks(l);
  }, [chatId]);
  useEffect(() => {
    void run(reload, 'Reading who can see this chat');
    // Lists of users and groups are the deployment owner's; anyone else types a user id.
    client.listUsers({ limit: 200 }).then(
      (u) => setUsers(u.map((x) => ({ id: x.id, name: x.username }))),
      () => setUsers(null),
    );
    client.groups().then(
      (g) => setGroups(g.map((x) => ({ id: x.id, name: x.name }))),
      () => setGroups(null),
    );
  }, [run, reload]);

  const grant = (kind: 'users' | 'groups', id: string, role: 'viewer' | null) =>
    run(async () => {
      setAcl(await client.updateChatAcl(chatId, { [kind]: { [id]: role } }));
    }, 'Saving who can see this chat');
  const addUser = (e: SyntheticEvent) => {
    e.preventDefault();
    const id = who.trim();
    if (id) void grant('users', id, 'viewer').then(() => setWho(''));
  };
  const newLink = () =>
    run(async () => {
      const l = await client.createShareLink(chatId, {});
      setFresh(new URL(`/s/${l.token}`, location.origin).toString());
      await reload();
    }, 'Making a share link');
  const revoke = (id: string) =>
    run(async () => {
      await client.deleteShareLink(chatId, id);
      await reload();
    }, 'Revoking the link');

  const sharedIds = new Set(acl?.users.map((u) => u.user_id));
  const sharedGroups = new Set(acl?.groups.map((g) => g.group_id));
  return (
    <dialog
      ref={ref}
      className="confirm-dialog share-dialog"
      aria-labelledby="share-title"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id="share-title">Share “{title}”</h2>
      <section aria-labelledby="share-people">
        <h3 id="share-people">People and groups (read-only, live)</h3>
        {acl === null ? (
          <p aria-live="polite">Loading…</p>
        ) : acl.users.length + acl.groups.length === 0 ? (
          <p className="muted">Only you can see this chat.</p>
        ) : (
          <ul aria-label="Viewers">
            {acl.users.map((u) => (
              <li key={u.user_id}>
                <span>{u.username} · viewer</span>
                <button type="button" className="small" disabled={pending} onClick={() => void grant('users', u.user_id, null)}>
                  Stop sharing with {u.username}
                </button>
              </li>
            ))}
            {acl.groups.map((g) => (
              <li key={g.group_id}>
                <span>Group {g.name} · viewer</span>
                <button type="button" className="small" disabled={pending} onClick={() => void grant('groups', g.group_id, null)}>
                  Stop sharing with {g.name}
                </button>
              </li>
            ))}
          </ul>
        )}
        <form className="row" onSubmit={addUser}>
          {users ? (
            <label>
              User
              <select aria-label="User to share with" value={who} onChange={(e) => setWho(e.target.value)}>
                <option value="">Choose a user…</option>
                {users
                  .filter((u) => !sharedIds.has(u.id))
                  .map((u) => (
                    <option key={u.id} value={u.id}>
                      {u.name}
                    </option>
                  ))}
              </select>
            </label>
          ) : (
            <label>
              User id
              <input aria-label="User id to share with" value={who} onChange={(e) => setWho(e.target.value)} placeholder="the user's id" />
            </label>
          )}
          <button type="submit" disabled={pending || !who.trim()}>
            Share with user
          </button>
        </form>
        {groups && groups.length > 0 && (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (group) void grant('groups', group, 'viewer').then(() => setGroup(''));
            }}
          >
            <label>
              Group
              <select aria-label="Group to share with" value={group} onChange={(e) => setGroup(e.target.value)}>
                <option value="">Choose a group…</option>
                {groups
                  .filter((g) => !sharedGroups.has(g.id))
                  .map((g) => (
                    <option key={g.id} value={g.id}>
                      {g.name}
                    </option>
                  ))}
              </select>
            </label>
            <button type="submit" disabled={pending || !group}>
              Share with group
            </button>
          </form>
        )}
      </section>
      <section aria-labelledby="share-links">
        <h3 id="share-links">Share links</h3>
        <p className="muted">Anyone with a link sees the chat as it is now, read-only, without signing in.</p>
        {fresh && (
          <p className="readonly-note">
            <span className="share-token" data-testid="share-url">
              {fresh}
            </span>{' '}
            <CopyButton text={fresh} label="Copy link" />
            <br />
            <span className="muted">Shown only now: copy it.</span>
          </p>
        )}
        {links.length > 0 && (
          <ul aria-label="Links">
            {links.map((l) => (
              <li key={l.id}>
                <span>
                  Made {new Date(l.created_at).toLocaleString()}
                  {l.expires_at ? `, expires ${new Date(l.expires_at).toLocaleString()}` : ''}
                </span>
                <button type="button" className="small danger" disabled={pending} onClick={() => void revoke(l.id)}>
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        )}
        <button type="button" disabled={pending} onClick={() => void newLink()}>
          New share link
        </button>
      </section>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="row end">
        <button type="button" className="secondary" onClick={onClose}>
          Done
        </button>
      </div>
    </dialog>
  );
}
