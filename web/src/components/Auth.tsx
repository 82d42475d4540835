import { type SyntheticEvent, useState } from 'react';
import { client, errorText } from '../api';
import { Link } from './Link';
import { field } from '../form';
import { SsoLogin } from './SsoLogin';

/** The login form (email and password → the HttpOnly session cookie). */
export function Login({ onDone, ended = false }: { onDone: () => void; ended?: boolean }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError('');
    try {
      await client.login({ email: field(f, 'email'), password: field(f, 'password') });
      onDone();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <main className="auth">
      <h1>Log in to chatd-edge</h1>
      {ended && (
        <p className="notice" role="status">
          Your session ended. Log in again to go back where you were.
        </p>
      )}
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      {/* Slot "login-providers": the SSO feature adds its "Log in with …" buttons here. */}
      <SsoLogin />
      <p>
        First run? <Link href="/setup">Create the owner account</Link>
      </p>
    </main>
  );
}

/** First-user setup: only while no user exists (the server answers 409 afterwards). */
export function Setup({ onDone }: { onDone: () => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError('');
    try {
      await client.createFirstUser({
        email: field(f, 'email'),
        username: field(f, 'username'),
        password: field(f, 'password'),
      });
      onDone();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <main className="auth">
      <h1>Set up chatd-edge</h1>
      <p>The first account is the owner of this deployment.</p>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Username
          <input name="username" autoComplete="nickname" required />
        </label>
        <label>
          Password (8 characters or more)
          <input name="password" type="password" autoComplete="new-password" minLength={8} required />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Create the owner account
        </button>
      </form>
      <p>
        Already set up? <Link href="/login">Log in</Link>
      </p>
    </main>
  );
}
