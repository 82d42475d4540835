import { ChangePassword, MyUsage } from './Account';
import { ApiKeys } from './ApiKeys';
import { PushOptIn } from './PushOptIn';

/** The user's settings: API keys and Web Push (a separate chunk: most visits never open it). */
export default function Settings() {
  return (
    <section className="settings" aria-labelledby="settings-heading">
      <h1 id="settings-heading">Settings</h1>
      <PushOptIn />
      <ApiKeys />
      <MyUsage />
      <ChangePassword />
    </section>
  );
}
