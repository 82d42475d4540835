// @ts-check
/**
 * The scale test's report as text (stdout): a table per subject, in the order the results JSON has them.
 */
import { OTHER, WORKERD_APP, WORKERD_DEV, fmt, table } from './scaletest-report.mjs';

/**
 * What render reads of the results JSON.
 * @typedef {{ args: { chats: number, turns: number, concurrency: number, rolling: boolean, replyWords: number, chunkDelayMs: number, url: string },
 *   machine: ReturnType<typeof import('./scaletest-report.mjs').machineInfo>, git: ReturnType<typeof import('./scaletest-report.mjs').gitInfo>,
 *   versions: Record<string, string | null>, stack: { model: string }, label: string | null,
 *   result: { turns: { planned: number, completed: number, failed: number }, wallSeconds: number, turnsPerSecond: number,
 *     latencyMs: Record<string, import('./scaletest-report.mjs').Summary>, streams: Record<string, number | null>,
 *     durableMessages: Record<string, number | string[]>, postgres: Record<string, unknown>,
 *     cpu: (NonNullable<ReturnType<typeof import('./scaletest-report.mjs').cpuByGroup>> & { clientCpuSeconds: number }) | null,
 *     tcp: Record<string, number> | null,
 *     timeline: import('./scaletest-timeline.mjs').TimelinePoint[],
 *     workerProfile: (ReturnType<typeof import('./scaletest-inspector.mjs').summarizeProfile> & { file: string }) | null,
 *     errors: Record<string, number> } }} Report
 */

/**
 * The run, the stack, throughput and latencies.
 * @param {string[]} out
 * @param {Report} r
 */
function runSection(out, r) {
  const { args, result: x } = r;
  out.push('');
  out.push(`chatd-edge scale test: ${args.chats} chats x ${args.turns} turns, concurrency ${args.concurrency}${args.rolling ? ' (rolling)' : ''}, ${args.replyWords}-word replies${args.chunkDelayMs ? ` (${args.chunkDelayMs} ms between deltas)` : ''}${r.label ? ` [${r.label}]` : ''}`);
  out.push(
    `stack ${args.url}, model ${r.stack.model}; commit ${r.git.commit?.slice(0, 10) ?? '?'}${r.git.dirty ? ' (with uncommitted changes)' : ''}; ` +
      `${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.totalMemGiB} GiB, Node ${r.machine.node}, wrangler ${r.versions.wrangler ?? '?'}, Postgres ${r.versions.postgres ?? '?'}`,
  );
  out.push('');
  out.push(
    table(
      ['throughput', 'value'],
      [
        ['turns completed', `${fmt(x.turns.completed)} / ${fmt(x.turns.planned)}`],
        ['turns failed', fmt(x.turns.failed)],
        ['wall time (all turns)', `${fmt(x.wallSeconds)} s`],
        ['turns per second', fmt(x.turnsPerSecond)],
      ],
    ),
  );
  out.push('');
  const lat = (/** @type {string} */ label, /** @type {import('./scaletest-report.mjs').Summary | undefined} */ s) =>
    s ? [label, fmt(s.n), fmt(s.mean), fmt(s.p50), fmt(s.p95), fmt(s.p99), fmt(s.max)] : [label];
  out.push(
    table(
      ['latency (ms)', 'n', 'mean', 'p50', 'p95', 'p99', 'max'],
      [
        lat('message POST (follow-up turns)', x.latencyMs.messagePost),
        lat('time to first part', x.latencyMs.firstPart),
        lat('time to turn end', x.latencyMs.turnEnd),
        lat('chat create POST (turn 1)', x.latencyMs.chatCreatePost),
        lat('create to turn 1 end (+ socket)', x.latencyMs.createToFirstTurnEnd),
      ],
    ),
  );
}

/**
 * The streams and the durable messages.
 * @param {string[]} out
 * @param {Report} r
 */
function messageSection(out, r) {
  const x = r.result;
  out.push('');
  const s = x.streams;
  out.push(
    table(
      ['streams', 'value'],
      [
        ['stream re-reads (dbCatchups)', fmt(s.dbCatchups)],
        ['re-reads per follow-up turn', fmt(s.reReadsPerFollowUpTurn, 3)],
        ['GetChatMessagesByChatID per follow-up turn (Postgres)', fmt(s.historyReadsPerFollowUpTurn ?? null, 3)],
        ['GetChatByID (cold chat object) per follow-up turn', fmt(s.coldChatLoadsPerFollowUpTurn ?? null, 3)],
        ['catch-ups from the cache', fmt(s.cacheCatchups)],
        ['full refreshes', fmt(s.fullRefreshes)],
        ['sockets open at the end (server)', fmt(s.sockets)],
        ['client reconnects / unexpected closes', `${fmt(s.clientReconnects)} / ${fmt(s.unexpectedCloses)}`],
        ['chats whose counters were unavailable', fmt(s.unavailable)],
      ],
    ),
  );
  out.push('');
  const d = x.durableMessages;
  const n = (/** @type {string} */ k) => (typeof d[k] === 'number' ? fmt(/** @type {number} */ (d[k])) : 'n/a');
  out.push(
    table(
      ['durable messages', 'value'],
      [
        ['expected (2 per completed turn)', n('expected')],
        ['on the server (GET /messages)', n('onServer')],
        ['received by the clients', n('seenByClients')],
        ['lost', n('lost')],
        ['duplicated', n('duplicated')],
        ['out of order', n('outOfOrder')],
        ['received but not on the server', n('phantom')],
        ['message_part seq gaps', n('partGaps')],
        ['chats with a problem', n('chatsWithProblems')],
        ['chats checked (stream opened)', n('chatsChecked')],
        ['chats whose stream never opened', n('chatsWithoutStream')],
        ['chats not checked (GET /messages failed 4 times)', n('checkFailed')],
      ],
    ),
  );
  if (Array.isArray(d.examples) && d.examples.length) for (const e of d.examples) out.push(`  ${e}`);
}

/**
 * Postgres' statements and table counters, or why there are none.
 * @param {string[]} out
 * @param {Report} r
 */
function postgresSection(out, r) {
  const x = r.result;
  out.push('');
  const p = x.postgres;
  if (Array.isArray(p.statements)) {
    const rows = /** @type {{ name: string, calls: number, perTurn: number | null, rows: number, totalMs: number, meanMs: number | null }[]} */ (p.statements);
    out.push(
      table(
        ['Postgres statements (pg_stat_statements)', 'calls', 'per turn', 'rows', 'total ms', 'mean ms'],
        [
          ...rows.map((q) => [q.name, fmt(q.calls), fmt(q.perTurn), fmt(q.rows), fmt(q.totalMs), fmt(q.meanMs, 3)]),
          ['total sent by clients (nested ones not counted)', fmt(/** @type {number} */ (p.totalCalls)), fmt(/** @type {number | null} */ (p.totalCallsPerTurn)), '', fmt(/** @type {number} */ (p.totalDbMs)), ''],
        ],
      ),
    );
    out.push('');
    const num = (/** @type {string} */ k, digits = 2) => fmt(/** @type {number | null} */ (p[k] ?? null), digits);
    out.push(
      table(
        ['Postgres tables (pg_stat_user_tables)', 'value'],
        [
          ['chat_messages rows inserted', num('messageInserts')],
          ['chats row updates (all statements)', num('chatsUpdates')],
          ['  of which status/meta UPDATEs (rows)', num('chatsUpdatesByOtherStatements')],
          ['  of which by InsertChatMessages', num('insertCausedChatsUpdates')],
          ['chats updates per message insert (all)', num('chatsUpdatesPerMessageInsert', 3)],
          ['chats updates per message insert (by the insert)', num('insertCausedChatsUpdatesPerMessageInsert', 3)],
          ['Postgres sessions opened', num('sessionsOpened')],
          ['sessions opened per turn', num('sessionsOpenedPerTurn')],
          ['connections open at the end', num('backendsAtEnd')],
          ['counters settled', p.countersSettled === true ? 'yes' : 'no (statistics still not flushed after 25 s)'],
        ],
      ),
    );
  } else {
    out.push(`Postgres: ${String(p.unavailable)}`);
  }
}

/**
 * CPU by process group and the Worker's profile.
 * @param {string[]} out
 * @param {Report} r
 */
function cpuSection(out, r) {
  const x = r.result;
  out.push('');
  if (x.cpu) {
    out.push(
      table(
        [`CPU during the turns (${fmt(x.cpu.wallSeconds)} s, machine busy ${fmt(x.cpu.machineBusyPct)}%)`, 'cpu s', 'cores', '% of busy'],
        x.cpu.groups.map((g) => [g.group, fmt(g.cpuSeconds), fmt(g.cores), fmt(g.pctOfBusy)]),
      ),
    );
    out.push('');
  }
  if (x.workerProfile) {
    const wp = x.workerProfile;
    out.push(
      table(
        [`Worker isolate CPU profile: ${fmt(wp.totalMs / 1000)} s busy of ${fmt(wp.wallMs / 1000)} s (by module, self time)`, 'ms', '%'],
        wp.byModule.slice(0, 15).map((m) => [m.module, fmt(m.ms, 0), fmt(m.pct, 1)]),
      ),
    );
    out.push('');
    out.push(table(['hottest functions (self time)', 'ms', '%'], wp.byFunction.slice(0, 20).map((f) => [f.fn.slice(0, 110), fmt(f.ms, 0), fmt(f.pct, 1)])));
    out.push('');
  }
}

/**
 * The timeline.
 * @param {string[]} out
 * @param {Report} r
 */
function timelineSection(out, r) {
  const x = r.result;
  if (x.timeline.length) {
    const stackGroups = [WORKERD_APP, WORKERD_DEV, 'wrangler (node)', 'dev.mjs (pg proxy + mock LLM)', 'postgres'];
    /** @type {Record<string, string>} */
    const short = { [WORKERD_APP]: 'app workerd', [WORKERD_DEV]: 'dev workerd', 'wrangler (node)': 'wrangler', 'dev.mjs (pg proxy + mock LLM)': 'dev.mjs', postgres: 'postgres' };
    out.push(
      table(
        ['timeline (s)', 'done', 'failed', 'turns/s', 'mid-turn', 'errors', 'pg conns', 'app workerd fds', 'dev workerd fds', ...stackGroups.map((g) => `${short[g] ?? g} cores`), 'other cores', 'pg conns by last statement'],
        x.timeline.map((p) => {
          const conns = p.pgConnections ? Object.values(p.pgConnections).reduce((u, v) => u + v, 0) : null;
          return [
            fmt(p.t, 0),
            fmt(p.done),
            fmt(p.failed),
            fmt(p.turnsPerSecond, 1),
            fmt(p.midTurn),
            fmt(p.errors),
            fmt(conns),
            fmt(p.openFiles[WORKERD_APP] ?? p.openFiles.workerd ?? null),
            fmt(p.openFiles[WORKERD_DEV] ?? null),
            ...stackGroups.map((g) => fmt(p.cores[g] ?? 0)),
            fmt(p.cores[OTHER] ?? 0),
            Object.entries(p.pgConnectionsByLastStatement ?? {})
              .sort((u, v) => v[1] - u[1])
              .slice(0, 3)
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          ];
        }),
      ),
    );
    out.push('');
  }
}

/**
 * TCP counters and errors.
 * @param {string[]} out
 * @param {Report} r
 */
function endSection(out, r) {
  const x = r.result;
  if (x.tcp) {
    out.push(
      `TCP on this machine during the turns: ${fmt(x.tcp.ListenOverflows ?? null)} accept-queue overflows, ${fmt(x.tcp.ListenDrops ?? null)} SYNs dropped, ` +
        `${fmt(x.tcp.TCPTimeouts ?? null)} retransmission timeouts`,
    );
    out.push('');
  }
  const errs = Object.entries(x.errors);
  if (errs.length) {
    out.push(table(['errors', 'count'], errs.slice(0, 20).map(([k, v]) => [k.slice(0, 150), fmt(v)])));
    out.push('');
  }
}

/**
 * The report as text.
 * @param {Report} r
 * @returns {string}
 */
export function render(r) {
  /** @type {string[]} */
  const out = [];
  for (const section of [runSection, messageSection, postgresSection, cpuSection, timelineSection, endSection]) section(out, r);
  return out.join('\n');
}
