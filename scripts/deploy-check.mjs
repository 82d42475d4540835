// @ts-check
/**
 * `npm run deploy:check` (and one of `npm test`'s checks): bundles the Worker with `wrangler deploy --dry-run`,
 * prints its size raw and gzipped, and exits 1 when it is over the budget (scripts/lib/deploy-check.mjs says how the
 * budget was set). `--budget-raw N` / `--budget-gzip N` (bytes), or DEPLOY_BUDGET_RAW_BYTES / DEPLOY_BUDGET_GZIP_BYTES.
 */
import { budgetFrom, dryRunBundle, judge } from './lib/deploy-check.mjs';

try {
  const budget = budgetFrom(process.argv.slice(2), process.env);
  const { ok, lines } = judge(await dryRunBundle(), budget);
  for (const line of lines) process.stdout.write(`${line}\n`);
  if (!ok) process.exitCode = 1;
} catch (e) {
  process.stderr.write(`deploy check: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
