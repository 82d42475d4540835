import type { Agent } from './lib/access';
import type { KeyIdentity } from './services/key-shards';
import type { Db } from './lib/db';

export { dbSettings, settings, type Settings } from './lib/settings';

/** Hono's environment for every route: Worker bindings and per-request variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    db: Db;
    actor?: KeyIdentity;
    agent?: Agent;
  };
}
