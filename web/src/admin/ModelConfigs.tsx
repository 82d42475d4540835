import type { ModelConfig } from '@chatd-edge/sdk';
import { type SyntheticEvent, useState } from 'react';
import { client } from '../api';
import { useConfirm } from '../components/Confirm';
import { ErrorLine } from './ErrorLine';
import { TYPES } from './Providers';
import { useAdminList } from './useAdminList';
import { field } from '../form';

const listConfigs = () => client.listModelConfigs();
type Options = ModelConfig['options'];

/** Parses the options box: a JSON object (the server checks its fields). */
function parseOptions(text: string): Options {
  const v: unknown = JSON.parse(text || '{}');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('Options must be a JSON object.');
  return v; // the server validates every field (400 with validations)
}

/** Model configs: default, enabled, options, delete (deleting the default promotes another, as the API documents). */
export function ModelConfigs() {
  const { items, error, act } = useAdminList(listConfigs);
  const add = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    void act(async () =>
      client.createModelConfig({
        provider: field(f, 'provider'),
        model: field(f, 'model'),
        display_name: field(f, 'display_name'),
        context_limit: Number(f.get('context_limit')),
        is_default: f.get('is_default') === 'on',
        options: parseOptions(field(f, 'options')),
      }),
    ).then((ok) => {
      if (ok) form.reset();
    });
  };
  return (
    <section aria-labelledby="models-heading">
      <h2 id="models-heading">Models</h2>
      <ErrorLine error={error} />
      <ul className="cards">
        {items?.map((m) => <ModelRow key={m.id} m={m} others={items.filter((x) => x.id !== m.id && x.enabled).length} act={act} />)}
      </ul>
      <form onSubmit={add} className="card">
        <h3>Add a model</h3>
        <label>
          Provider type (the provider of that type must be configured on the Providers tab)
          <select name="provider" required defaultValue="openai">
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Model
          <input name="model" required placeholder="gpt-4o-mini" />
        </label>
        <label>
          Display name
          <input name="display_name" />
        </label>
        <label>
          Context limit (tokens)
          <input name="context_limit" type="number" min={1} defaultValue={128000} required />
        </label>
        <label>
          Options (JSON)
          <textarea name="options" rows={2} defaultValue="{}" />
        </label>
        <label className="toggle">
          <input name="is_default" type="checkbox" /> Default
        </label>
        <button type="submit">Add model</button>
      </form>
    </section>
  );
}

function ModelRow({ m, others, act }: { m: ModelConfig; others: number; act: (f: () => Promise<unknown>) => Promise<boolean> }) {
  const [options, setOptions] = useState(JSON.stringify(m.options));
  const { ask, dialog } = useConfirm();
  const name = m.display_name || m.model;
  // Deleting the default promotes another enabled model, when there is one; with none left, chats have no model.
  const consequence = m.is_default ? (others > 0 ? ' (another model becomes the default)' : ' (no model is left: new chats cannot start)') : '';
  const remove = async () => {
    if (await ask(`Delete the model ${name}?`, <p>Chats that used it move to the default model{consequence}.</p>, 'Delete model')) {
      await act(() => client.deleteModelConfig(m.id));
    }
  };
  return (
    <li className="card">
      <strong>{name}</strong> <span className="muted">({m.provider} · {m.model} · {m.context_limit} tokens)</span>
      {m.is_default && <span className="badge">default</span>}
      <div className="row wrap">
        <label className="toggle">
          <input type="checkbox" checked={m.enabled} onChange={(e) => void act(() => client.updateModelConfig(m.id, { enabled: e.target.checked }))} />
          Enabled
        </label>
        {!m.is_default && (
          <button type="button" className="small" onClick={() => void act(() => client.updateModelConfig(m.id, { is_default: true }))}>
            Make default
          </button>
        )}
      </div>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => client.updateModelConfig(m.id, { options: parseOptions(options) }));
        }}
      >
        <label>
          Options of {name} (JSON)
          <textarea rows={2} value={options} onChange={(e) => setOptions(e.target.value)} />
        </label>
        <button type="submit">Save options</button>
      </form>
      {dialog}
      <button type="button" className="small danger" onClick={() => void remove()}>
        Delete {name}
        {consequence}
      </button>
    </li>
  );
}
