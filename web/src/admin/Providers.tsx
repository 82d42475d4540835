import type { Provider } from '@chatd-edge/sdk';
import { type SyntheticEvent, useState } from 'react';
import { client } from '../api';
import { useConfirm } from '../components/Confirm';
import { ErrorLine } from './ErrorLine';
import { useAdminList } from './useAdminList';
import { field } from '../form';

export const TYPES = ['openai', 'anthropic', 'google', 'openai-compat', 'openrouter'] as const;
type ProviderType = (typeof TYPES)[number];
const listProviders = () => client.listProviders();

/** LLM providers. Keys are write-only: the API only says whether one is set. */
export function Providers() {
  const { items, error, act } = useAdminList(listProviders);
  const [type, setType] = useState<ProviderType>('openai');
  const add = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const apiKey = field(f, 'api_key');
    const baseUrl = field(f, 'base_url');
    void act(() =>
      client.createProvider({
        provider: type,
        display_name: field(f, 'display_name'),
        ...(apiKey ? { api_key: apiKey } : {}),
        ...(baseUrl ? { base_url: baseUrl } : {}),
      }),
    ).then((ok) => {
      if (ok) form.reset();
    });
  };
  return (
    <section aria-labelledby="providers-heading">
      <h2 id="providers-heading">Providers</h2>
      <ErrorLine error={error} />
      <ul className="cards">
        {items?.map((p) => <ProviderRow key={p.id} p={p} act={act} />)}
      </ul>
      <form onSubmit={add} className="card">
        <h3>Add a provider</h3>
        <p className="muted">
          One provider per type: a model names a type (openai, anthropic…), and its calls use that type's provider. To
          change a provider's key, replace it above instead of adding a second one.
        </p>
        <label>
          Type
          <select value={type} onChange={(e) => setType(TYPES.find((t) => t === e.target.value) ?? 'openai')}>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Display name
          <input name="display_name" />
        </label>
        <label>
          API key
          <input name="api_key" type="password" autoComplete="off" />
        </label>
        <label>
          Base URL (optional)
          <input name="base_url" type="url" />
        </label>
        <button type="submit">Add provider</button>
      </form>
    </section>
  );
}

function ProviderRow({ p, act }: { p: Provider; act: (f: () => Promise<unknown>) => Promise<boolean> }) {
  const [key, setKey] = useState('');
  const { ask, dialog } = useConfirm();
  const name = p.display_name || p.provider;
  const remove = async () => {
    if (await ask(`Delete the provider ${name}?`, <p>Its models are retired; a new default is promoted if needed.</p>, 'Delete provider')) {
      await act(() => client.deleteProvider(p.id));
    }
  };
  return (
    <li className="card">
      {dialog}
      <strong>{p.display_name || p.provider}</strong> <span className="muted">({p.provider})</span>
      <div className="muted">{p.base_url || 'default endpoint'} · key {p.has_api_key ? 'set' : 'not set'}</div>
      <label className="toggle">
        <input type="checkbox" checked={p.enabled} onChange={(e) => void act(() => client.updateProvider(p.id, { enabled: e.target.checked }))} />
        Enabled
      </label>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => client.updateProvider(p.id, { api_key: key })).then((ok) => {
            if (ok) setKey('');
          });
        }}
      >
        <label>
          New API key for {p.display_name || p.provider}
          <input type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
        </label>
        <button type="submit" disabled={!key}>
          Replace key
        </button>
      </form>
      <button type="button" className="small danger" onClick={() => void remove()}>
        Delete provider (its models are retired; a new default is promoted if needed)
      </button>
    </li>
  );
}
