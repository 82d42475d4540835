import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runScheduled } from '../../functions/scheduled';
import { makeUser, sdk, startChat, testDb } from './helpers';
import { download, PNG, upload } from './file-fixtures';

const File = z.object({ id: z.uuid() }).loose();
const HOUR = 3_600_000;

/** The file's R2 key, or null when its row is gone. */
async function keyOf(id: string): Promise<string | null> {
  const db = testDb();
  try {
    const { rows } = await db.query('SELECT r2_key FROM chat_files WHERE id = $1', [id]);
    return z.array(z.object({ r2_key: z.string() })).parse(rows)[0]?.r2_key ?? null;
  } finally {
    await db.close();
  }
}

describe('the cron removes file bytes', () => {
  it("removes a deleted chat's files, rows and R2 objects, on the next run", async () => {
    const u = await makeUser();
    const file = File.parse((await upload(u.token, PNG, 'image/png', 'a.png')).body);
    const key = await keyOf(file.id);
    expect(key).not.toBeNull();
    const chat = await startChat(u.token, [{ type: 'file', file_id: file.id }]);
    await runScheduled(env, new Date());
    expect(await env.FILES.head(key ?? '')).not.toBeNull();
    await sdk(u.token).deleteChat(chat.id);
    const report = await runScheduled(env, new Date());
    expect(report.jobs.files?.ok).toBe(true);
    expect(await keyOf(file.id)).toBeNull();
    expect(await env.FILES.head(key ?? '')).toBeNull();
    expect((await download(u.token, file.id)).status).toBe(404);
  });

  it('removes a file no message used after 24 h, and keeps one a live message uses', async () => {
    const u = await makeUser();
    const unused = File.parse((await upload(u.token, PNG, 'image/png', 'unused.png')).body);
    const used = File.parse((await upload(u.token, PNG, 'image/png', 'used.png')).body);
    await startChat(u.token, [{ type: 'file', file_id: used.id }]);
    const unusedKey = await keyOf(unused.id);
    await runScheduled(env, new Date(Date.now() + 23 * HOUR));
    expect(await keyOf(unused.id)).toBe(unusedKey);
    await runScheduled(env, new Date(Date.now() + 25 * HOUR));
    expect(await keyOf(unused.id)).toBeNull();
    expect(await env.FILES.head(unusedKey ?? '')).toBeNull();
    expect((await download(u.token, used.id)).status).toBe(200);
  });

  it('gives the removed bytes back to the quota', async () => {
    const u = await makeUser();
    File.parse((await upload(u.token, PNG, 'image/png', 'q.png')).body);
    const usage = async () => {
      const db = testDb();
      try {
        const { rows } = await db.query('SELECT bytes::int AS b FROM chat_file_usage WHERE owner_id = $1', [u.user.id]);
        return z.array(z.object({ b: z.number() })).parse(rows)[0]?.b;
      } finally {
        await db.close();
      }
    };
    expect(await usage()).toBe(PNG.length);
    await runScheduled(env, new Date(Date.now() + 25 * HOUR));
    expect(await usage()).toBe(0);
  });
});
