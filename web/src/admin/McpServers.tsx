import type { McpServer } from '@chatd-edge/sdk';
import { type SyntheticEvent, useState } from 'react';
import { client } from '../api';
import { useConfirm } from '../components/Confirm';
import { ErrorLine } from './ErrorLine';
import { useAdminList } from './useAdminList';
import { field } from '../form';

const APPROVALS = ['ask', 'auto', 'deny'] as const;
type Approval = (typeof APPROVALS)[number];
const APPROVAL_TEXT: Record<Approval, string> = {
  ask: 'ask: each call waits for the chat owner',
  auto: 'auto: calls run without asking',
  deny: 'deny: calls are refused',
};
const asApproval = (v: string): Approval => APPROVALS.find((a) => a === v) ?? 'ask';
const ApprovalOptions = () =>
  APPROVALS.map((a) => (
    <option key={a} value={a}>
      {APPROVAL_TEXT[a]}
    </option>
  ));
const listServers = () => client.listMcpServers();
type Act = (f: () => Promise<unknown>) => Promise<boolean>;

/** `Name: value` lines → headers; a line without a colon is an error the form shows (nothing is sent). */
export function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at <= 0) throw new Error(`Header line ${i + 1} is not "Name: value".`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/** Comma-separated tool names → allowed_tools; empty: null (every tool of the server). */
const parseTools = (text: string): string[] | null => {
  const tools = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return tools.length ? tools : null;
};

/** The deployment's MCP servers (tools for every chat). Header values are write-only: the API only says whether some are set. */
export function McpServers() {
  const { items, error, act } = useAdminList(listServers);
  const add = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    void act(() => {
      const headers = parseHeaders(field(f, 'headers'));
      const tools = parseTools(field(f, 'allowed_tools'));
      return client.createMcpServer({
        name: field(f, 'name'),
        url: field(f, 'url'),
        enabled: f.get('enabled') === 'on',
        tool_approval: asApproval(field(f, 'tool_approval')),
        ...(Object.keys(headers).length ? { headers } : {}),
        ...(tools ? { allowed_tools: tools } : {}),
      });
    }).then((ok) => {
      if (ok) form.reset();
    });
  };
  return (
    <section aria-labelledby="mcp-heading">
      <h2 id="mcp-heading">MCP servers</h2>
      <p className="muted">
        Every enabled server's tools are offered to every chat, named <code>server__tool</code>.
      </p>
      <ErrorLine error={error} />
      {items?.length === 0 && <p className="muted">No MCP servers yet.</p>}
      <ul className="cards" aria-label="MCP servers">
        {items?.map((s) => <ServerRow key={s.id} s={s} act={act} />)}
      </ul>
      <form onSubmit={add} className="card">
        <h3>Add an MCP server</h3>
        <label>
          Name (letters, digits, "_" or "-")
          <input name="name" required maxLength={32} pattern="[A-Za-z0-9_\-]{1,32}" />
        </label>
        <label>
          URL (Streamable HTTP endpoint)
          <input name="url" type="url" required />
        </label>
        <label>
          Headers (one "Name: value" a line; write-only, never shown again)
          <textarea name="headers" rows={2} autoComplete="off" spellCheck={false} />
        </label>
        <label>
          Tool approval
          <select name="tool_approval" defaultValue="ask">
            <ApprovalOptions />
          </select>
        </label>
        <label>
          Allowed tools (comma-separated; empty: all)
          <input name="allowed_tools" />
        </label>
        <label className="toggle">
          <input type="checkbox" name="enabled" defaultChecked />
          Enabled
        </label>
        <button type="submit">Add MCP server</button>
      </form>
    </section>
  );
}

function ServerRow({ s, act }: { s: McpServer; act: Act }) {
  const { ask, dialog } = useConfirm();
  const [headers, setHeaders] = useState('');
  const [tools, setTools] = useState((s.allowed_tools ?? []).join(', '));
  const remove = async () => {
    if (await ask(`Delete the MCP server ${s.name}?`, <p>Its tools ({s.name}__…) are no longer offered to any chat.</p>, 'Delete MCP server')) {
      await act(() => client.deleteMcpServer(s.id));
    }
  };
  return (
    <li className="card" data-server={s.name}>
      {dialog}
      <strong>{s.name}</strong> <span className="muted">{s.url}</span>
      <div className="muted">
        {s.enabled ? 'enabled' : 'disabled'} · headers {s.has_headers ? 'set' : 'not set'} · tools{' '}
        {s.allowed_tools ? s.allowed_tools.join(', ') : 'all'}
      </div>
      <label className="toggle">
        <input type="checkbox" checked={s.enabled} onChange={(e) => void act(() => client.updateMcpServer(s.id, { enabled: e.target.checked }))} />
        Enabled
      </label>
      <label>
        Tool approval for {s.name}
        <select value={s.tool_approval} onChange={(e) => void act(() => client.updateMcpServer(s.id, { tool_approval: asApproval(e.target.value) }))}>
          <ApprovalOptions />
        </select>
      </label>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => client.updateMcpServer(s.id, { allowed_tools: parseTools(tools) }));
        }}
      >
        <label className="grow">
          Allowed tools of {s.name} (comma-separated; empty: all)
          <input value={tools} onChange={(e) => setTools(e.target.value)} />
        </label>
        <button type="submit">Save tools</button>
      </form>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => client.updateMcpServer(s.id, { headers: headers.trim() ? parseHeaders(headers) : null })).then((ok) => {
            if (ok) setHeaders('');
          });
        }}
      >
        <label className="grow">
          New headers for {s.name} (empty: remove them)
          <textarea rows={1} autoComplete="off" spellCheck={false} value={headers} onChange={(e) => setHeaders(e.target.value)} />
        </label>
        <button type="submit">Replace headers</button>
      </form>
      <button type="button" className="small danger" onClick={() => void remove()}>
        Delete MCP server {s.name}
      </button>
    </li>
  );
}
