import { useEffect, useState } from 'react';
import { errorText } from '../api';
import { currentSubscription, disablePush, enablePush, pushSupported } from '../push';

/** The Web Push opt-in: a notification when an answer is ready, opening the chat when clicked. */
export function PushOptIn() {
  const [on, setOn] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    currentSubscription().then(
      (s) => setOn(s !== null),
      () => setOn(false),
    );
  }, []);
  const toggle = async () => {
    setBusy(true);
    setError('');
    try {
      if (on) await disablePush();
      else await enablePush();
      setOn(!on);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="push-heading">
      <h2 id="push-heading">Notifications</h2>
      {!pushSupported() ? (
        <p className="muted">This browser does not support Web Push.</p>
      ) : (
        <>
          <p>Get a notification on this device when an answer is ready (or a turn fails).</p>
          <button type="button" onClick={() => void toggle()} disabled={busy || on === null} aria-pressed={on === true}>
            {on ? 'Turn off notifications on this device' : 'Turn on notifications on this device'}
          </button>
          {busy && (
            <span className="spinner" role="status">
              {' '}
              Working…
            </span>
          )}
          <p className="muted push-state" aria-live="polite">
            {on === null ? '' : on ? 'Notifications are on for this device.' : 'Notifications are off for this device.'}
          </p>
        </>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}
