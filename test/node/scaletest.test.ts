/**
 * `npm run scaletest` and `npm run bench`, for real and small: the scale test starts its own stack (dev.mjs on free
 * ports, a throwaway Postgres), drives 3 chats x 2 turns through it and writes its report; the bench inserts into
 * a scratch Postgres. Both are judged by the JSON they write.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { groupByName, loadGeneratedStatements, nameOf, normalizeSql, statementNames } from '../../scripts/lib/scaletest-sql.mjs';
import { Semaphore } from '../../scripts/lib/scaletest-client.mjs';
import { compareIds } from '../../scripts/lib/scaletest-chat-run.mjs';
import { summarize } from '../../scripts/lib/scaletest-report.mjs';
import { ROOT } from '../../scripts/lib/scratch-db.mjs';

let out: string;
beforeAll(async () => {
  out = await mkdtemp(path.join(os.tmpdir(), 'chatd-scaletest-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

function run(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid ?? -1;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      resolve({ code, stdout, stderr, pid });
    });
  });
}

async function results(prefix: string): Promise<Record<string, unknown>> {
  const files = (await readdir(out)).filter((f) => f.startsWith(`${prefix}-`) && f.endsWith('.json'));
  expect(files).toHaveLength(1);
  return JSON.parse(await readFile(path.join(out, files[0] ?? ''), 'utf8')) as Record<string, unknown>;
}

describe('scaletest helpers', () => {
  it('names every generated statement, and pg_stat_statements texts of them, by their @name', () => {
    const generated = loadGeneratedStatements(ROOT);
    const insert = generated.find((s) => s.name === 'InsertChatMessages');
    expect(insert?.params).toEqual(['model_config_id', 'status', 'last_error', 'pending_tool_calls', 'chat_id', 'roles', 'contents', 'created_bys', 'usages', 'keys', 'turn_record', 'debug_run']);
    expect(insert?.sql).toContain('WITH updated_chat AS');
    // What pg_stat_statements records: the same text with constants replaced by $n.
    const recorded = (insert?.sql ?? '').replace("NULLIF(m.created_by, '')", 'NULLIF(m.created_by, $7)').replace("'input_tokens'", '$8');
    expect(nameOf(statementNames(generated), recorded).name).toBe('InsertChatMessages');
    // NULL and escape-string constants are $n in pg_stat_statements too (CreateChat has both).
    expect(normalizeSql("SELECT btrim(v, E'\\n'), NULL FROM t WHERE x IS NULL")).toBe(normalizeSql('SELECT btrim(v, $1), $2 FROM t WHERE x IS NULL'));
    expect(normalizeSql("SELECT * FROM chats WHERE deleted = FALSE LIMIT 1 -- x")).toBe(normalizeSql('SELECT * FROM chats WHERE deleted = $1 LIMIT $2'));
    const recordedText = (name: string) => {
      let n = 100;
      return (generated.find((g) => g.name === name)?.sql ?? '').replace(/'[^']*'/g, () => `$${(n += 1)}`);
    };
    const grouped = groupByName(
      [
        { query: 'BEGIN', toplevel: true, calls: 2, totalMs: 0.1, rows: 0 },
        { query: 'SELECT $2 FROM ONLY "public"."chats" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x', toplevel: false, calls: 3, totalMs: 0.1, rows: 3 },
        // What pg_stat_statements records for UpdateChatStatus: its text with every constant replaced by $n.
        { query: recordedText('UpdateChatStatus'), toplevel: true, calls: 4, totalMs: 1, rows: 4 },
      ],
      generated,
    );
    expect(grouped.map((g) => [g.name, g.calls, g.updatesChats])).toEqual([
      ['UpdateChatStatus', 4, true],
      ['foreign-key check on chats (nested)', 3, false],
      ['BEGIN', 2, false],
    ]);
  });

  it('computes percentiles, compares id lists, and bounds concurrency', async () => {
    expect(summarize([5, 1, 4, 2, 3])).toMatchObject({ n: 5, p50: 3, p95: 5, max: 5, mean: 3 });
    expect(summarize([]).p50).toBeNull();
    expect(compareIds([1, 3, 9], [1, 2, 3])).toEqual({ lost: [2], phantom: [9] });
    const sem = new Semaphore(2);
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        const release = await sem.acquire();
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside -= 1;
        release();
      }),
    );
    expect(most).toBe(2);
  });
});

describe('npm run scaletest', () => {
  it('drives 3 chats x 2 turns through its own stack with nothing lost, no re-reads, and sane counts', async () => {
    const r = await run('scaletest.mjs', ['--chats', '3', '--turns', '2', '--reply-words', '5', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('turns per second');
    const report = await results('scaletest');
    const x = report.result as Record<string, Record<string, unknown>>;
    expect(x.turns).toEqual({ planned: 6, completed: 6, failed: 0 });
    expect(x.durableMessages).toMatchObject({ expected: 12, onServer: 12, seenByClients: 12, lost: 0, duplicated: 0, outOfOrder: 0, phantom: 0, partGaps: 0 });
    expect(x.streams).toMatchObject({ dbCatchups: 0, reReadsPerFollowUpTurn: 0, followUpTurns: 3, unavailable: 0, unexpectedCloses: 0 });
    const latency = x.latencyMs as Record<string, { n: number; p50: number }>;
    expect(latency.messagePost?.n).toBe(3);
    expect(latency.turnEnd?.n).toBe(3);
    expect(latency.firstPart?.n).toBe(3);
    expect(latency.turnEnd?.p50).toBeGreaterThanOrEqual(latency.firstPart?.p50 ?? Infinity);
    const pgr = x.postgres as { statements: { name: string; calls: number }[]; messageInserts: number; insertCausedChatsUpdates: number; countersSettled: boolean };
    const calls = (name: string) => pgr.statements.find((s) => s.name === name)?.calls;
    // One user and one assistant message per turn, each its own InsertChatMessages, except a chat's first message,
    // which InsertChat writes in the same statement as the chat; same model throughout.
    expect(calls('InsertChatMessages')).toBe(12 - 3);
    expect(calls('CreateChat')).toBe(3);
    // The SDK sends every creation with an Idempotency-Key; a first creation still reads nothing before its insert.
    expect(calls('GetChatByID')).toBeUndefined();
    expect(pgr.messageInserts).toBe(12);
    expect(pgr.countersSettled).toBe(true);
    // The inserts carry the turns' status changes (a user message sets running, an assistant one waiting; a chat is
    // created running): 2 per turn less 1 per chat. The model never changes, so the guard adds none.
    expect(pgr.insertCausedChatsUpdates).toBe(2 * 6 - 3);
    // The dev proxy's counts, read from its stop line: sessions are pooled, so never more sessions than connections.
    const proxy = z.object({ clients: z.number(), sessionsOpened: z.number(), reused: z.number() }).parse(x.postgresProxy);
    expect(proxy.clients).toBeGreaterThanOrEqual(3);
    expect(proxy.sessionsOpened).toBeLessThanOrEqual(proxy.clients);
    expect(proxy.sessionsOpened + proxy.reused).toBeLessThanOrEqual(proxy.clients);
    expect(proxy.reused).toBeGreaterThan(0);
    expect(report.machine).toMatchObject({ cpus: os.cpus().length, node: process.version });
    // The throwaway stack's folder (.data/scaletest-<time>-<pid>) is gone.
    expect((await readdir(path.join(ROOT, '.data'))).filter((d) => d.startsWith('scaletest-') && d.endsWith(`-${String(r.pid)}`))).toEqual([]);
  }, 90_000);

  it('runs chats two at a time (--rolling) with the dev instrumentation off and a CPU profile of the Worker', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-scaletest-rolling-'));
    try {
      const r = await run('scaletest.mjs', ['--chats', '4', '--turns', '2', '--concurrency', '2', '--rolling', '--quiet-dev', '--cpu-profile', '--sample-s', '1', '--out', dir]);
      expect(r.code, r.stderr).toBe(0);
      const files = await readdir(dir);
      expect(files.filter((f) => f.startsWith('scaletest-cpuprofile-'))).toHaveLength(1);
      const report = JSON.parse(await readFile(path.join(dir, files.find((f) => /^scaletest-\d/.test(f)) ?? ''), 'utf8')) as {
        args: { rolling: boolean };
        stack: { quietDev: boolean };
        result: Record<string, unknown>;
      };
      expect(report.args.rolling).toBe(true);
      expect(report.stack.quietDev).toBe(true);
      expect(report.result.turns).toEqual({ planned: 8, completed: 8, failed: 0 });
      expect(report.result.durableMessages).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, onServer: 16 });
      // Each chat's stream was closed after its last turn.
      expect(report.result.streams).toMatchObject({ sockets: 0, unexpectedCloses: 0 });
      const profile = report.result.workerProfile as { totalMs: number; byModule: { module: string }[] };
      expect(profile.totalMs).toBeGreaterThan(0);
      // Samples are attributed to bundled modules (npm packages or project files), not only to the runtime.
      expect(profile.byModule.some((m) => !m.module.startsWith('(') && m.module !== 'index.js')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('refuses bad arguments before starting anything', async () => {
    const r = await run('scaletest.mjs', ['--chats', 'many']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--chats wants an integer >= 1, got "many"');
  });
});

describe('npm run bench', () => {
  it('compares same-model, switch and plain inserts: switches update the chats row once each, same-model never', async () => {
    const r = await run('bench.mjs', ['--iterations', '60', '--warmup', '10', '--block', '20', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const report = await results('bench');
    const byKey = Object.fromEntries((report.results as { key: string; ops: number; chatsUpdates: number; opsPerSecond: number; serverCalls: number }[]).map((v) => [v.key, v]));
    expect(byKey['same-model']).toMatchObject({ ops: 60, chatsUpdates: 0, serverCalls: 60 });
    expect(byKey['model-switch']).toMatchObject({ ops: 60, chatsUpdates: 60, serverCalls: 60 });
    expect(byKey.plain).toMatchObject({ ops: 60, chatsUpdates: 0, serverCalls: 60 });
    expect(byKey['same-model']?.opsPerSecond).toBeGreaterThan(0);
    // The scratch Postgres (.data/bench-<pid>-<port>) is gone.
    expect((await readdir(path.join(ROOT, '.data'))).filter((d) => d.startsWith(`bench-${String(r.pid)}-`))).toEqual([]);
  }, 60_000);
});
