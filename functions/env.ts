import type { Agent } from './core/access';
import type { KeyIdentity } from './core/key-shards';
import type { Db } from './core/db';

export { dbSettings, settings, type Settings } from './core/settings';

/** Hono's environment for every route: Worker bindings and per-request variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    db: Db;
    actor?: KeyIdentity;
    agent?: Agent;
  };
}
