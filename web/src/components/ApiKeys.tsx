import type { components } from '@chatd-edge/sdk';
import { type SyntheticEvent, useCallback, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { CopyButton, useConfirm } from './Confirm';

type ApiKey = components['schemas']['ApiKey'];

const DAY = 86_400;

/** API keys: create (the key is shown once), list, revoke. */
export function ApiKeys() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [created, setCreated] = useState<{ id: string; key: string } | null>(null);
  const { ask, dialog } = useConfirm();
  const [name, setName] = useState('');
  const [days, setDays] = useState(30);
  const [error, setError] = useState('');

  const load = useCallback(async () => {
    try {
      setKeys(await client.listKeys());
    } catch (e) {
      setError(errorText(e));
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: SyntheticEvent) => {
    e.preventDefault();
    setError('');
    try {
      const k = await client.createKey({ ...(name ? { name } : {}), lifetime_seconds: days * DAY });
      setCreated({ id: k.id, key: k.key });
      setName('');
      await load();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const revoke = async (k: ApiKey) => {
    const name = k.name || k.id;
    if (!(await ask(`Revoke the key ${name}?`, <p>Every client using it stops working at once. This cannot be undone.</p>, 'Revoke key'))) return;
    setError('');
    try {
      await client.deleteKey(k.id);
      // A revoked key is not "your new key" any more.
      setCreated((c) => (c?.id === k.id ? null : c));
      await load();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">API keys</h2>
      {dialog}
      <form onSubmit={(e) => void create(e)} className="row wrap">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={64} />
        </label>
        <label>
          Lifetime (days)
          <input type="number" min={1} max={365} value={days} onChange={(e) => setDays(Number(e.target.value))} />
        </label>
        <button type="submit">Create key</button>
      </form>
      {created && (
        <div className="notice" role="status">
          <p>
            Your new key, shown only this once (copy it now):
          </p>
          <code className="secret" data-testid="new-key">
            {created.key}
          </code>
          <CopyButton text={created.key} label="Copy key" />{' '}
          <button type="button" className="small" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {keys && keys.length === 0 && <p className="muted">No API keys.</p>}
      {keys && keys.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id}>
                <td>{k.name || k.id}</td>
                <td>{new Date(k.created_at).toLocaleDateString()}</td>
                <td>{new Date(k.expires_at).toLocaleDateString()}</td>
                <td>{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : 'never'}</td>
                <td>
                  <button type="button" className="small danger" onClick={() => void revoke(k)} aria-label={`Revoke key ${k.name || k.id}`}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
