/**
 * Spend limits: the deployment default (site_configs `spend_limit`) and one user's own limit (user_spend_limits),
 * which overrides it. Enforcement is the users' meters' (durable-objects/usage-meter.ts): a change of a user's own
 * limit tells their meter at once; a change of the default reaches each meter at its next read (within READ_TTL_MS).
 */
import { noEvent, type Recorder } from './audit';
import type { Db } from '../core/db';
import { DbUnavailableError, notFound } from '../core/errors';
import { usageMeter, type SpendLimit, type SpendState } from '../core/usage-meter-api';
import { getUserById } from '../../sql/generated/users.queries';
import { deleteUserSpendLimit, upsertUserSpendLimit } from '../../sql/generated/usage.queries';
import { toMicros } from '../core/usage-cost';

/** A user's limit and spend now, from their meter. */
export async function spendState(env: Env, userId: string): Promise<SpendState> {
  const state = await usageMeter(env, userId).state(userId);
  if (!state) throw new DbUnavailableError('the spend meter cannot reach the database');
  return state;
}

/** Another user's limit and spend (owners): 404 for an unknown user, whose meter is never started. */
export async function userSpendState(env: Env, db: Db, userId: string): Promise<SpendState> {
  const [user] = await getUserById.run({ id: userId }, db);
  if (!user) throw notFound();
  return await spendState(env, userId);
}

/**
 * Sets one user's own limit, or with `amount: null` clears it (the deployment default applies again); 404 for an
 * unknown user. Their meter reads the change before its next answer.
 */
export async function setUserSpendLimit(
  env: Env,
  db: Db,
  actorId: string,
  userId: string,
  limit: SpendLimit,
  record: Recorder<SpendLimit> = noEvent,
): Promise<SpendState> {
  await db.inTx(async (tx) => {
    const rows =
      limit.amount === null
        ? await deleteUserSpendLimit.run({ user_id: userId }, tx)
        : await upsertUserSpendLimit.run(
            { user_id: userId, period: limit.period, amount_micros: toMicros(limit.amount).toString(), updated_by: actorId },
            tx,
          );
    if (rows.length === 0) throw notFound();
    await record(tx, limit);
  });
  await usageMeter(env, userId).forget();
  return await spendState(env, userId);
}
