import { type SyntheticEvent, useEffect, useState } from 'react';
import { client, errorText } from '../api';
import { ErrorLine } from './ErrorLine';

type Config = Awaited<ReturnType<typeof client.oidcConfig>>;
type Test = Awaited<ReturnType<typeof client.testOidc>>;

const lines = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter((x) => x !== '');

/** Single sign-on settings (OpenID Connect), with "test the configuration". */
export function Sso() {
  const [cfg, setCfg] = useState<Config | undefined>(undefined);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState('');
  const [test, setTest] = useState<Test | null>(null);
  useEffect(() => {
    client.oidcConfig().then(setCfg, (e: unknown) => setError(errorText(e)));
  }, []);
  if (cfg === undefined) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  const c = cfg ?? null;
  const submit = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const str = (k: string) => {
      const v = f.get(k);
      return typeof v === 'string' ? v : '';
    };
    setError('');
    setSaved('');
    let mapping: Record<string, string>;
    try {
      mapping = JSON.parse(str('group_mapping') || '{}') as Record<string, string>;
    } catch {
      setError('Group mapping must be JSON: {"claim value": "group id"}.');
      return;
    }
    const secret = str('client_secret');
    client
      .setOidcConfig({
        enabled: f.get('enabled') === 'on',
        display_name: str('display_name'),
        issuer: str('issuer'),
        client_id: str('client_id'),
        ...(secret ? { client_secret: secret } : {}),
        scopes: lines(str('scopes')),
        email_domains: lines(str('email_domains')),
        groups_claim: str('groups_claim') || null,
        group_mapping: mapping,
        auto_create_users: f.get('auto_create_users') === 'on',
        link_by_email: f.get('link_by_email') === 'on',
        require_sso_for_members: f.get('require_sso_for_members') === 'on',
      })
      .then(
        (next) => {
          setCfg(next);
          setSaved('Single sign-on saved.');
        },
        (err: unknown) => setError(errorText(err)),
      );
  };
  const runTest = () => {
    setTest(null);
    client.testOidc().then(setTest, (e: unknown) => setError(errorText(e)));
  };
  return (
    <section aria-labelledby="sso-heading">
      <h2 id="sso-heading">Single sign-on (OpenID Connect)</h2>
      <ErrorLine error={error} />
      {saved && <p role="status">{saved}</p>}
      <form onSubmit={submit}>
        <label className="row">
          <input name="enabled" type="checkbox" defaultChecked={c?.enabled ?? false} /> Enabled
        </label>
        <label>
          Button label (“Sign in with …”)
          <input name="display_name" required defaultValue={c?.display_name ?? ''} />
        </label>
        <label>
          Issuer URL
          <input name="issuer" type="url" required defaultValue={c?.issuer ?? ''} />
        </label>
        <label>
          Client ID
          <input name="client_id" required defaultValue={c?.client_id ?? ''} />
        </label>
        <label>
          Client secret {c?.has_client_secret ? '(set; leave empty to keep it)' : ''}
          <input name="client_secret" type="password" autoComplete="off" />
        </label>
        <label>
          Scopes
          <input name="scopes" defaultValue={(c?.scopes ?? ['openid', 'email', 'profile']).join(' ')} />
        </label>
        <label>
          Allowed email domains (empty: any)
          <input name="email_domains" defaultValue={(c?.email_domains ?? []).join(', ')} />
        </label>
        <label>
          Groups claim
          <input name="groups_claim" defaultValue={c?.groups_claim ?? ''} />
        </label>
        <label>
          Group mapping (JSON: claim value → group id)
          <textarea name="group_mapping" rows={3} defaultValue={JSON.stringify(c?.group_mapping ?? {})} />
        </label>
        <label className="row">
          <input name="auto_create_users" type="checkbox" defaultChecked={c?.auto_create_users ?? false} /> Create members on first sign-in
        </label>
        <label className="row">
          <input name="link_by_email" type="checkbox" defaultChecked={c?.link_by_email ?? false} /> Link a first sign-in to the existing account with the same verified email
        </label>
        <label className="row">
          <input name="require_sso_for_members" type="checkbox" defaultChecked={c?.require_sso_for_members ?? false} /> Require single sign-on for members (owners keep their password)
        </label>
        <div className="row">
          <button type="submit">Save</button>
          <button type="button" onClick={runTest}>
            Test the configuration
          </button>
        </div>
      </form>
      {test && (
        <div role="status" aria-label="configuration test">
          {test.ok ? <p>The configuration works: discovery succeeded.</p> : <ul>{test.problems.map((p) => <li key={p}>{p}</li>)}</ul>}
        </div>
      )}
    </section>
  );
}
