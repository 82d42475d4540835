/**
 * The cron trigger's work. Retention purge and auto-archive arrive with the retention work; until then a
 * run only records that it happened, so `wrangler dev --test-scheduled` and the tests can drive it.
 */
export async function runScheduled(_env: Env, now: Date): Promise<{ ran: string[] }> {
  console.log(JSON.stringify({ level: 'info', msg: 'scheduled run', at: now.toISOString(), jobs: [] }));
  return await Promise.resolve({ ran: [] });
}
