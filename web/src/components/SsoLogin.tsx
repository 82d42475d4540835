import { useEffect, useState } from 'react';
import { client } from '../api';

const ERRORS: Record<string, string> = {
  sso_disabled: 'Single sign-on is not enabled.',
  provider_unavailable: 'The identity provider could not be reached. Try again shortly.',
  invalid_state: 'That sign-in link expired or was already used. Start again.',
  access_denied: 'The identity provider refused the sign-in.',
  invalid_token: 'The identity provider’s answer could not be verified.',
  email_unverified: 'Your identity provider has no verified email for you.',
  email_domain: 'Your email domain may not sign in here.',
  email_taken: 'An account with your email already exists; ask an owner to link it.',
  no_account: 'You have no account here; ask an owner.',
  suspended: 'This account is suspended.',
};

/** "Sign in with <provider>" (slot "login-providers"), and the reason of a failed single sign-on (?error=). */
export function SsoLogin() {
  const [name, setName] = useState<string | null>(null);
  const code = new URLSearchParams(window.location.search).get('error');
  useEffect(() => {
    client.authMethods().then(
      (m) => setName(m.oidc?.enabled ? m.oidc.display_name : null),
      () => setName(null),
    );
  }, []);
  const back = new URLSearchParams(window.location.search).get('next') ?? '/';
  const redirect = back.startsWith('/') && !back.startsWith('//') ? back : '/';
  return (
    <>
      {code && (
        <p role="alert" className="error">
          {ERRORS[code] ?? 'Single sign-on failed.'}
        </p>
      )}
      {name !== null && (
        <p>
          <a className="button" href={`/api/v2/auth/oidc/login?redirect=${encodeURIComponent(redirect)}`}>
            Sign in with {name}
          </a>
        </p>
      )}
    </>
  );
}
