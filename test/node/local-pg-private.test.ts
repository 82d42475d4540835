/**
 * As root, Postgres runs as the `postgres` user, which cannot enter a private folder (a clone in /root, mode 0700):
 * it could neither run the binaries in node_modules nor use a data folder in .data/ (`spawn .../initdb EACCES`).
 * The project then keeps a copy of the binaries and its data folders under $CHATD_STATE_DIR (scripts/lib/pg-home.mjs).
 * These tests start Postgres from a copy of the project inside a 0700 folder, with its own copy of the binaries.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/ports.mjs';
import { exists, isRoot, makePrivateProject, processesMentioning, runNode, type PrivateProject } from './private-project.js';

if (!isRoot) {
  console.warn('local-pg-private.test.ts: skipped, these tests need root (the server then runs as the postgres user, which cannot enter a private folder)');
}

describe.skipIf(!isRoot)('Postgres as root from a folder the postgres user cannot enter', () => {
  let project: PrivateProject;
  let postgresUid = 0;

  beforeAll(async () => {
    project = await makePrivateProject();
  });
  afterAll(async () => {
    await project.remove();
  });

  /** The project's state folder: $CHATD_STATE_DIR/chatd-edge-<hash>. */
  async function stateDir(): Promise<string> {
    const entries = (await readdir(project.stateBase)).filter((e) => e.startsWith('chatd-edge-'));
    expect(entries).toHaveLength(1);
    return path.join(project.stateBase, entries[0] ?? '');
  }

  it('starts a scratch server, serves a query, and stops leaving no process and no data folder', async () => {
    postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim() || '-1');
    const scratch = pathToFileURL(path.join(project.root, 'scripts', 'lib', 'scratch-db.mjs')).href;
    const script = [
      `const { startScratchPostgres } = await import(${JSON.stringify(scratch)});`,
      "const s = await startScratchPostgres('private');",
      'process.stdout.write(JSON.stringify({ url: s.url, pid: s.pid, dataDir: s.dataDir }) + "\\n");',
      "process.stdin.on('data', () => {});",
      "process.stdin.once('end', () => { void s.stop().then(() => process.exit(0)); });",
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project.root,
      env: { ...process.env, CHATD_STATE_DIR: project.stateBase },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // The first line, or the exit (the old code crashed here with `spawn .../initdb EACCES`).
      const first = await new Promise<string | null>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('\n')) resolve(stdout.split('\n')[0] ?? '');
        });
        void exited.then(() => {
          resolve(null);
        });
      });
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(first, stderr).not.toBeNull();
      const started = JSON.parse(first ?? '{}') as { url: string; pid: number; dataDir: string };

      const state = await stateDir();
      expect(started.dataDir.startsWith(path.join(state, 'data') + path.sep)).toBe(true);
      expect(stderr).toContain(`copied the Postgres binaries to ${path.join(state, 'native')}`);
      expect(stderr).toContain(`the postgres user may not enter ${project.base} (mode 0700, owner uid 0)`);
      const st = await stat(state);
      expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: postgresUid, mode: 0o700 });
      expect((await stat(`/proc/${started.pid}`)).uid).toBe(postgresUid); // the server runs as postgres

      const client = new pg.Client(started.url);
      await client.connect();
      try {
        const r = await client.query<{ dir: string; n: number }>("SELECT current_setting('data_directory') AS dir, 1 + 1 AS n");
        expect(r.rows[0]).toEqual({ dir: started.dataDir, n: 2 });
      } finally {
        await client.end();
      }

      child.stdin.end();
      expect(await exited).toBe(0);
      expect(await exists(started.pid)).toBe(false);
      expect(await processesMentioning(started.dataDir)).toEqual([]);
      expect(existsSync(started.dataDir)).toBe(false);
      expect(await readdir(path.join(state, 'data'))).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    }
  });

  it('npm run migrate keeps .data/postgres under the state folder, reuses it, and stops its server', async () => {
    const env = { CHATD_STATE_DIR: project.stateBase, CHATD_PG_PORT: String(await freePort()) };
    const migrate = path.join(project.root, 'scripts', 'migrate.mjs');
    const up = await runNode([migrate, 'up'], { cwd: project.root, env });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const dataDir = path.join(await stateDir(), 'data', 'postgres');
    expect(up.stdout).toContain(`new cluster in ${dataDir}`);
    expect(up.stdout).toMatch(/applied 000001_/);
    expect(up.stdout).not.toContain('copied the Postgres binaries'); // made once, by the first test
    expect(existsSync(path.join(project.root, '.data', 'postgres'))).toBe(false);

    const status = await runNode([migrate, 'status'], { cwd: project.root, env });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`data in ${dataDir}`);
    expect(status.stdout).toMatch(/\d+ applied, 0 pending/);
    expect(await processesMentioning(dataDir)).toEqual([]);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  }, 120_000);
});
