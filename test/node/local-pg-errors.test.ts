/**
 * A failure to start Postgres ends every command with a message naming the cause and the fix: no stack trace, no
 * unhandled 'error' event, nothing left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPostgres } from '../../scripts/lib/local-pg.mjs';
import { freePort } from '../../scripts/lib/ports.mjs';
import { explainFailure } from '../../scripts/lib/pg-server.mjs';
import { exists, isRoot, makePrivateProject, processesMentioning, runNode, type PrivateProject } from './private-project.js';

const noStack = (stderr: string) => {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('node:internal');
  expect(stderr).not.toContain("Unhandled 'error' event");
};

describe('binaries that cannot be run', () => {
  let project: PrivateProject;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    project = await makePrivateProject({ executable: false });
    env.CHATD_STATE_DIR = project.stateBase;
  });
  afterAll(async () => {
    await project.remove();
  });

  /** What each command says, whoever runs the tests (as root the binaries are run from a copy, as the postgres user). */
  const expectMessage = (stderr: string) => {
    expect(stderr).toMatch(/Postgres did not start on 127\.0\.0\.1:\d+ with data in /);
    expect(stderr).toMatch(/bin\/(initdb|postgres) cannot be run( as the postgres user)?: permission denied \(EACCES\)\. /);
    expect(stderr).toContain('Reinstall the binaries (`rm -rf node_modules && npm ci`) or make them executable (`chmod a+x ');
    noStack(stderr);
  };

  it.each([
    ['codegen', ['scripts/codegen.mjs', '--check']],
    ['migrate', ['scripts/migrate.mjs', 'up']],
    ['bench', ['scripts/bench.mjs', '--iterations', '1', '--warmup', '0']],
  ])('%s prints the message and exits 1, leaving nothing behind', async (_name, args) => {
    const [script, ...rest] = args as [string, ...string[]];
    const r = await runNode([path.join(project.root, script), ...rest], {
      cwd: project.root,
      env: { ...env, CHATD_PG_PORT: String(await freePort()) },
    });
    expect(r.code).toBe(1);
    expectMessage(r.stderr);
    expect(await processesMentioning(project.root)).toEqual([]);
    expect(await processesMentioning(project.stateBase)).toEqual([]);
    // Scratch clusters (codegen, bench) leave no folder behind.
    const dataFolders = [path.join(project.root, '.data')];
    for (const d of await readdir(project.stateBase)) dataFolders.push(path.join(project.stateBase, d, 'data'));
    for (const dir of dataFolders) {
      const left = existsSync(dir) ? (await readdir(dir)).filter((e) => /^(codegen|bench)-/.test(e)) : [];
      expect(left).toEqual([]);
    }
  }, 60_000);

  it('npm run dev prints the message and exits 1, leaving nothing behind', async () => {
    const ports = { CHATD_PORT: 0, CHATD_PG_PORT: 0, CHATD_PG_PROXY_PORT: 0, CHATD_MOCK_LLM_PORT: 0, CHATD_MCP_PORT: 0, CHATD_OIDC_PORT: 0 };
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const r = await runNode([path.join(project.root, 'scripts', 'dev.mjs')], {
      cwd: project.root,
      // The copy has no web/ to build (dev.mjs builds the UI before it starts wrangler and Postgres side by side).
      env: { ...env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), PROVIDER_KEY_ENCRYPTION_KEY: 'x'.repeat(44), CHATD_WEB_BUILD: '0' },
    });
    expect(r.code).toBe(1);
    expectMessage(r.stderr);
    expect(r.stdout).not.toContain('ready on');
    expect(await processesMentioning(project.root)).toEqual([]);
    expect(await processesMentioning(project.stateBase)).toEqual([]);
  }, 60_000);
});

describe('a data folder or port that is taken', () => {
  let base: string;
  let dataDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'chatd-pg-errors-'));
    await chmod(base, 0o755); // as root, the server runs as postgres: it must reach the data folder
    dataDir = path.join(base, 'pg');
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rm(base, { recursive: true, force: true });
  });

  it('a busy port: the message names CHATD_PG_PORT, and nothing is created or started', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(startLocalPostgres({ dataDir, port })).rejects.toThrow(
        `port ${port} is already in use, so Postgres cannot listen there. Stop what holds it or set CHATD_PG_PORT to another port.`,
      );
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('a data folder in use, then a stale postmaster.pid: messages with the fix; the fix works', async () => {
    const first = await startLocalPostgres({ dataDir, port: await freePort() });
    try {
      const port = await freePort();
      await expect(startLocalPostgres({ dataDir, port })).rejects.toThrow(
        `Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}: another Postgres (pid ${first.pid}) already runs on this data folder ` +
          '(another `npm run dev`, `npm run migrate` or test run?). ' +
          `Stop it (kill -INT ${first.pid}) or use another data folder (CHATD_DATA_DIR).`,
      );
      expect(await processesMentioning(dataDir)).toHaveLength(1); // the first server only
    } finally {
      await first.stop();
    }
    expect(await exists(first.pid)).toBe(false);

    // A crash left postmaster.pid, and its pid now belongs to another process of the server's user: Postgres
    // cannot tell it is stale and refuses to start.
    const uid = isRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
    const gid = isRoot ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
    const other = spawn('sleep', ['600'], { uid, gid, stdio: 'ignore' });
    children.push(other);
    await new Promise((resolve, reject) => other.once('spawn', resolve).once('error', reject));
    const pidFile = path.join(dataDir, 'postmaster.pid');
    await writeFile(pidFile, `${String(other.pid)}\n${dataDir}\n`);
    if (uid !== undefined && gid !== undefined) execFileSync('chown', [`${uid}:${gid}`, pidFile]);
    const port = await freePort();
    await expect(startLocalPostgres({ dataDir, port })).rejects.toThrow(
      `Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}: the lock file ${pidFile} is stale: it names pid ${String(other.pid)}, ` +
        'which is not a Postgres using it (left by a crash or a reboot, the pid since reused). ' +
        `If no Postgres runs on ${dataDir}, delete ${pidFile} and try again.`,
    );
    expect(await processesMentioning(dataDir)).toEqual([]);
    other.kill('SIGKILL');

    await rm(pidFile);
    const again = await startLocalPostgres({ dataDir, port });
    try {
      const client = new pg.Client(again.url);
      await client.connect();
      expect((await client.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      await client.end();
    } finally {
      await again.stop();
    }
    expect(await processesMentioning(dataDir)).toEqual([]);
  });
});

describe('explainFailure', () => {
  const base = { stage: 'postgres' as const, dataDir: '/d/pg', port: 5999, user: null };
  const proc = (lines: string[]) => ({ file: '/b/bin/postgres', child: null, exited: Promise.resolve({ code: 1, signal: null, error: null }), closed: Promise.resolve(), lines });
  const exit = { code: 1, signal: null, error: null };

  it.each([
    [
      'the port taken between the check and the start',
      ['2026-01-01 00:00:00.000 UTC [7] LOG:  could not bind IPv4 address "127.0.0.1": Address already in use'],
      'port 5999 is already in use, so Postgres cannot listen there. Stop what holds it or set CHATD_PG_PORT to another port.',
    ],
    [
      'a full disk',
      ['2026-01-01 00:00:00.000 UTC [7] FATAL:  could not write lock file "postmaster.pid": No space left on device'],
      'the disk is full (Postgres said: FATAL: could not write lock file "postmaster.pid": No space left on device). Free some space on the disk holding /d/pg',
    ],
    [
      'a folder that is not a cluster',
      ['initdb: error: directory "/d/pg" exists but is not empty'],
      '/d/pg exists but holds no Postgres cluster (no PG_VERSION). Move it away, or use another data folder (CHATD_DATA_DIR).',
    ],
    [
      'a data folder with the wrong owner',
      ['FATAL:  data directory "/d/pg" has wrong ownership'],
      "the data folder's owner or mode is wrong (Postgres said: FATAL: data directory \"/d/pg\" has wrong ownership). Fix it with `chmod 700 /d/pg`",
    ],
    [
      'a lock file whose pid is not running',
      ['FATAL:  lock file "postmaster.pid" already exists', 'HINT:  Is another postmaster (PID 999999999) running in data directory "/d/pg"?'],
      'the lock file /d/pg/postmaster.pid is stale: it names pid 999999999, which is not a Postgres using it',
    ],
  ])('%s', (_what, lines, want) => {
    const msg = explainFailure({ ...base, p: proc(lines), exit });
    expect(msg.startsWith('Postgres did not start on 127.0.0.1:5999 with data in /d/pg: ')).toBe(true);
    expect(msg).toContain(want);
  });

  it('anything else: the last lines and how to see the whole log', () => {
    const msg = explainFailure({ ...base, p: proc(['one', 'FATAL:  something new']), exit: { code: 1, signal: null, error: null } });
    expect(msg).toBe(
      'Postgres did not start on 127.0.0.1:5999 with data in /d/pg: postgres exited during start-up (code 1). Its last lines:\n  one\n  FATAL:  something new\n' +
        'Run again with CHATD_VERBOSE=1 to see its whole log.',
    );
  });
});
