// @ts-check
/**
 * The scale test's findings after the turns: the chats' stream counters (from the server), every chat's durable
 * messages as its client saw them against the server's list, and the latencies of the turns.
 */
import { ChatdError } from '@chatd-edge/sdk';
import { mapLimit } from './scaletest-client.mjs';
import { compareIds, serverMessageIds } from './scaletest-chat-run.mjs';
import { summarize } from './scaletest-report.mjs';

/** @typedef {import('./scaletest-chat-run.mjs').ChatRun} ChatRun */
/** @typedef {import('./scaletest-client.mjs').Api} Api */

/**
 * The stream counters of every chat that was created, summed (they live in each chat object's memory).
 * @param {Api} api
 * @param {ChatRun[]} ready  the runs whose chat exists
 */
export async function streamCounters(api, ready) {
  const stats = { cacheCatchups: 0, dbCatchups: 0, fullRefreshes: 0, sockets: 0, compactions: 0, unavailable: 0 };
  await mapLimit(ready, 16, async (r) => {
    const b = await api.client.streamStats(String(r.chatId)).catch(() => null);
    if (!b) {
      stats.unavailable += 1;
      return;
    }
    for (const k of /** @type {const} */ (['cacheCatchups', 'dbCatchups', 'fullRefreshes', 'sockets', 'compactions'])) {
      const v = b[k];
      if (typeof v === 'number') stats[k] += v;
    }
  });
  return stats;
}

/**
 * One chat's message ids on the server, compared with what its client saw; null when the server would not say.
 * The check is not the workload: a refused read (a 503 while the stack is still busy) is retried, 4 times at most.
 * @param {Api} api
 * @param {ChatRun} r
 * @param {{ stackDown: () => boolean, countError: (key: string) => void, retried: () => void }} o
 * @returns {Promise<{ server: number[], lost: number[], phantom: number[] } | null>}
 */
async function checkChat(api, r, { stackDown, countError, retried }) {
  const chatId = String(r.chatId);
  for (let attempt = 1; ; attempt++) {
    try {
      const server = await serverMessageIds(api, chatId);
      return { server, ...compareIds(r.ids, server) };
    } catch (e) {
      // Retried: an answer (a 503 while the stack is still busy). Not: no stack to answer.
      const down = !(e instanceof ChatdError) || e.status === 0 || stackDown();
      if (attempt < 4 && !down) {
        retried();
        await new Promise((res) => setTimeout(res, 1000 * attempt));
        continue;
      }
      countError(`GET /messages: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }
}

/**
 * Every lost, duplicated, out-of-order or phantom durable message any client saw, with up to 10 examples.
 * @param {Api} api
 * @param {ChatRun[]} ready  the runs whose chat exists
 * @param {{ stackDown: () => boolean, countError: (key: string) => void }} o
 *   stackDown: the own stack has stopped (then a failed read is not retried)
 */
export async function checkMessages(api, ready, { stackDown, countError }) {
  const integrity = {
    expected: 0,
    onServer: 0,
    seenByClients: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    phantom: 0,
    partGaps: 0,
    chatsWithProblems: 0,
    chatsChecked: 0,
    chatsWithoutStream: 0,
    checkFailed: 0,
    checkRetries: 0,
  };
  /** @type {string[]} */
  const examples = [];
  const o = { stackDown, countError, retried: () => (integrity.checkRetries += 1) };
  // Only chats whose stream opened can have lost anything; a chat created but never streamed is a failed turn.
  const streamed = ready.filter((r) => r.connectedOnce);
  integrity.chatsWithoutStream = ready.length - streamed.length;
  await mapLimit(streamed, 16, async (r) => {
    let c = await checkChat(api, r, o);
    if (c && c.lost.length > 0 && r.abandoned) {
      // A chat given up on mid-turn may still be finishing that turn: give its stream a moment to deliver.
      await new Promise((res) => setTimeout(res, 2000));
      c = await checkChat(api, r, o);
    }
    if (!c) {
      integrity.checkFailed += 1;
      return;
    }
    integrity.chatsChecked += 1;
    const { server, lost, phantom } = c;
    integrity.expected += 2 * r.turnsOk;
    integrity.onServer += server.length;
    integrity.seenByClients += r.ids.length;
    integrity.lost += lost.length;
    integrity.phantom += phantom.length;
    integrity.duplicated += r.duplicates;
    integrity.outOfOrder += r.outOfOrder;
    integrity.partGaps += r.partGaps;
    if (lost.length || phantom.length || r.duplicates || r.outOfOrder) {
      integrity.chatsWithProblems += 1;
      if (examples.length < 10) {
        examples.push(`chat ${String(r.chatId)}: ${[...(lost.length ? [`lost ${lost.slice(0, 5).join(',')}`] : []), ...(phantom.length ? [`not on server ${phantom.slice(0, 5).join(',')}`] : []), ...r.examples].join('; ')}`);
      }
    }
  });
  return { integrity, examples };
}

/**
 * The streams' figures: the counters, with Postgres' own count of the reads they stand for. The counters restart
 * when a chat object hibernates or is evicted; Postgres' count of GetChatMessagesByChatID (catch-ups on a cache miss,
 * full refreshes, and a cold object's history for the model) and GetChatByID does not.
 * @param {Awaited<ReturnType<typeof streamCounters>>} stats
 * @param {ChatRun[]} runs
 * @param {Record<string, unknown> | null} pgReport
 * @param {{ chats: number, turns: number }} o
 */
export function streamsReport(stats, runs, pgReport, { chats, turns }) {
  const pgCalls = (/** @type {string} */ name) => {
    const st = pgReport && Array.isArray(pgReport.statements) ? /** @type {{ name: string, calls: number }[]} */ (pgReport.statements) : null;
    return st ? (st.find((q) => q.name === name)?.calls ?? 0) : null;
  };
  const followUps = chats * (turns - 1);
  const per = (/** @type {number | null} */ n) => (n === null || followUps === 0 ? null : Math.round((n / followUps) * 1000) / 1000);
  return {
    ...stats,
    followUpTurns: followUps,
    reReadsPerFollowUpTurn: turns > 1 ? Math.round((stats.dbCatchups / followUps) * 1000) / 1000 : null,
    historyReads: pgCalls('GetChatMessagesByChatID'),
    historyReadsPerFollowUpTurn: per(pgCalls('GetChatMessagesByChatID')),
    coldChatLoads: pgCalls('GetChatByID'),
    coldChatLoadsPerFollowUpTurn: per(pgCalls('GetChatByID')),
    clientReconnects: runs.reduce((s, r) => s + r.reconnects, 0),
    unexpectedCloses: runs.reduce((s, r) => s + r.unexpectedCloses, 0),
    fullRefreshesSeen: runs.reduce((s, r) => s + r.fullRefreshes, 0),
  };
}

/**
 * Latencies of the turns: follow-up turns (2 and later) apart from the first, which creates the chat.
 * @param {ChatRun[]} runs
 */
export function latencies(runs) {
  const timings = runs.flatMap((r) => r.timings);
  const follow = timings.filter((t) => t.turn > 1);
  const first = timings.filter((t) => t.turn === 1);
  return {
    messagePost: summarize(follow.map((t) => t.postMs)),
    firstPart: summarize(follow.flatMap((t) => (t.firstPartMs === null ? [] : [t.firstPartMs]))),
    turnEnd: summarize(follow.map((t) => t.endMs)),
    chatCreatePost: summarize(first.map((t) => t.postMs)),
    createToFirstTurnEnd: summarize(first.map((t) => t.endMs)),
  };
}
