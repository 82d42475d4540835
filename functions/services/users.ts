/** Users, sessions and API keys: the data rules behind the /users routes. */
import { z } from 'zod';
import { Role, type Actor } from '../authz';
import type { Settings } from '../env';
import type { Conn, Db } from '../core/db';
import { pgErrorCode } from '../core/db';
import { dummyPasswordCheck, hashPassword, verifyPassword } from '../core/crypto';
import { ApiError, conflict, unauthorized } from '../core/errors';
import { mintToken } from '../lib/tokens';
import {
  countUsers,
  getUserCredentialsByEmail,
  insertApiKey,
  insertUser,
  lockUserBootstrap,
} from '../../sql/generated/users.queries';
import { ssoRequiredForUser } from '../../sql/generated/oidc.queries';
import { audit } from './audit';

export const UserRow = z.object({
  id: z.string(),
  email: z.string(),
  username: z.string(),
  roles: z.array(Role),
  created_at: z.coerce.date(),
});

export interface User {
  id: string;
  email: string;
  username: string;
  roles: Role[];
  created_at: string;
}

export function toUser(row: unknown): User {
  const u = UserRow.parse(row);
  return { id: u.id, email: u.email, username: u.username, roles: u.roles, created_at: u.created_at.toISOString() };
}

export function actorUser(a: Actor): User {
  return { id: a.userId, email: a.email, username: a.username, roles: a.roles, created_at: a.createdAt.toISOString() };
}

export interface NewUser {
  email: string;
  username: string;
  password: string;
  roles: Role[];
}

/** Inserts a user; a taken email or username is a 409. */
export async function createUser(conn: Conn, s: Settings, input: NewUser): Promise<User> {
  const hashed = await hashPassword(input.password, s.PASSWORD_HASH_ITERATIONS);
  try {
    const [row] = await insertUser.run(
      { email: input.email, username: input.username, hashed_password: hashed, roles: [...new Set(input.roles)] },
      conn,
    );
    return toUser(row);
  } catch (e) {
    if (pgErrorCode(e) === '23505') {
      const constraint = typeof e === 'object' && e !== null && 'constraint' in e ? String(e.constraint) : '';
      throw conflict(
        constraint.includes('username') ? 'A user with this username already exists.' : 'A user with this email already exists.',
      );
    }
    throw e;
  }
}

/** Creates the first user (an owner) and a session for them, only while no user exists. */
export async function createFirstUser(db: Db, s: Settings, input: Omit<NewUser, 'roles'>) {
  return await db.inTx(async (tx) => {
    await lockUserBootstrap.run(undefined, tx);
    const [row] = await countUsers.run(undefined, tx);
    if ((row?.count ?? 0) > 0) throw conflict('The first user has already been created.');
    const user = await createUser(tx, s, { ...input, roles: ['owner'] });
    const session = await createKey(tx, user.id, 'session', '', s.SESSION_LIFETIME_SECONDS);
    return { user, session_token: session.key };
  });
}

/** Whether the deployment still needs its first user (no user exists): the web UI then opens on Setup. */
export async function firstUserNeeded(db: Db): Promise<boolean> {
  const [row] = await countUsers.run(undefined, db);
  return (row?.count ?? 0) === 0;
}

/** Mints a session or API key for a user and stores only its hash. */
export async function createKey(conn: Conn, userId: string, kind: 'session' | 'api_key', name: string, lifetimeSeconds: number) {
  const t = await mintToken();
  const expires = new Date(Date.now() + lifetimeSeconds * 1000);
  await insertApiKey.run(
    { id: t.id, user_id: userId, kind, name, hashed_secret: t.hashedSecret, expires_at: expires },
    conn,
  );
  return { id: t.id, key: t.token, expires_at: expires };
}

/** Checks credentials and opens a session; the same 401 whether the email or the password is wrong. */
export async function login(db: Db, s: Settings, email: string, password: string, ip: string | null = null): Promise<string> {
  const [row] = await getUserCredentialsByEmail.run({ email }, db);
  const failed = async (reason: string, userId: string | null): Promise<void> => {
    await audit(db, { action: 'user.login_failed', actor: null, ip, target_type: userId ? 'user' : null, target_id: userId, detail: { method: 'password', email: email.slice(0, 254), reason } });
  };
  if (!row) {
    await dummyPasswordCheck(password, s.PASSWORD_HASH_ITERATIONS);
    await failed('unknown_email', null);
    throw unauthorized('Incorrect email or password.');
  }
  if (!(await verifyPassword(password, row.hashed_password))) {
    await failed('wrong_password', row.id);
    throw unauthorized('Incorrect email or password.');
  }
  // Said only to someone who knows the password.
  if (row.suspended) {
    await failed('suspended', row.id);
    throw new ApiError(403, 'This account is suspended.');
  }
  const [sso] = await ssoRequiredForUser.run({ user_id: row.id }, db);
  if (sso?.required) {
    await failed('sso_required', row.id);
    throw new ApiError(403, 'This deployment requires members to sign in with single sign-on.');
  }
  return await db.inTx(async (tx) => {
    const session = await createKey(tx, row.id, 'session', '', s.SESSION_LIFETIME_SECONDS);
    await audit(tx, { action: 'user.login', actor: { id: row.id, email }, ip, target_type: 'user', target_id: row.id, detail: { method: 'password' } });
    return session.key;
  });
}
