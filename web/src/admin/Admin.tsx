import { useState } from 'react';
import { Deployment } from './Deployment';
import { ModelConfigs } from './ModelConfigs';
import { Providers } from './Providers';
import { Users } from './Users';
import { Sso } from './Sso';
import { Audit } from './Audit';
import { McpServers } from './McpServers';

const TABS = [
  ['providers', 'Providers'],
  ['models', 'Models'],
  ['mcp', 'MCP servers'],
  ['deployment', 'Deployment'],
  ['users', 'Users'],
  ['sso', 'Single sign-on'],
  ['audit', 'Audit log'],
] as const;
type Tab = (typeof TABS)[number][0];

/** The owner's admin screens (a separate chunk; members never load it, and the API refuses them with 403). */
export default function Admin({ currentUserId }: { currentUserId: string }) {
  const [tab, setTab] = useState<Tab>('providers');
  return (
    <section className="admin" aria-labelledby="admin-heading">
      <h1 id="admin-heading">Admin</h1>
      <div role="tablist" aria-label="Admin sections" className="tabs">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`tab-${id}`}
            aria-selected={tab === id}
            aria-controls={`panel-${id}`}
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === 'providers' && <Providers />}
        {tab === 'models' && <ModelConfigs />}
        {tab === 'mcp' && <McpServers />}
        {tab === 'deployment' && <Deployment />}
        {tab === 'users' && <Users currentUserId={currentUserId} />}
        {tab === 'sso' && <Sso />}
        {tab === 'audit' && <Audit />}
      </div>
    </section>
  );
}
