import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { makeUser, sdk, startChat, testEnv, textOf } from './helpers';
import { PDF, PNG, upload } from './file-fixtures';

const File = z.object({ id: z.uuid() }).loose();
const Recorded = z.array(z.object({ body: z.unknown() }).loose());
const UserMessage = z.object({ role: z.literal('user'), content: z.union([z.string(), z.array(z.record(z.string(), z.unknown()))]) }).loose();
const Body = z.object({ messages: z.array(z.object({ role: z.string() }).loose()) }).loose();

/** The last recorded model request whose last user message contains `marker`. */
async function requestWith(marker: string) {
  const res = await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`);
  const all = Recorded.parse(await res.json());
  for (const r of all.reverse()) {
    const body = Body.safeParse(r.body);
    if (!body.success) continue;
    const users = body.data.messages.filter((m) => m.role === 'user').map((m) => UserMessage.parse(m));
    const last = users.at(-1);
    if (last && JSON.stringify(last.content).includes(marker)) return last;
  }
  throw new Error(`no request with ${marker}`);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

describe('files in the model input', () => {
  it('sends the image bytes, the PDF and the text file with its name; the mock describes what it saw', async () => {
    const u = await makeUser();
    const png = File.parse((await upload(u.token, PNG, 'image/png', 'dot.png')).body);
    const pdf = File.parse((await upload(u.token, PDF, 'application/pdf', 'report.pdf')).body);
    const txt = File.parse((await upload(u.token, new TextEncoder().encode('alpha beta'), 'text/plain', 'notes.txt')).body);
    const marker = `m${crypto.randomUUID().slice(0, 8)}`;
    const chat = await startChat(u.token, [
      { type: 'text', text: `${marker} what is this? [[mock describe_files]]` },
      { type: 'file', file_id: png.id },
      { type: 'file', file_id: pdf.id },
      { type: 'file', file_id: txt.id },
    ]);
    const msgs = (await sdk(u.token).listMessages(chat.id)).messages;
    const answer = msgs.filter((m) => m.role === 'assistant').at(-1);
    expect(answer ? textOf(answer) : null).toBe(`Saw 1 image: image/png ${PNG.length} bytes; 1 file: report.pdf application/pdf ${PDF.length} bytes.`);
    const sent = await requestWith(marker);
    expect(sent.content).toEqual([
      { type: 'text', text: `${marker} what is this? [[mock describe_files]]` },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${b64(PNG)}` } },
      { type: 'file', file: { filename: 'report.pdf', file_data: `data:application/pdf;base64,${b64(PDF)}` } },
      { type: 'text', text: 'notes.txt:\nalpha beta' },
    ]);
    // The next turn still sends the earlier message's files (read again from R2, not from the message cache).
    const marker2 = `n${crypto.randomUUID().slice(0, 8)}`;
    await sdk(u.token).sendMessage(chat.id, { content: `${marker2} and now?` });
    const { env } = await import('cloudflare:workers');
    await env.CHAT_ROOM.getByName(chat.id).idle();
    const res = await fetch(`${testEnv.MOCK_LLM_URL}/__mock/requests`);
    const all = Recorded.parse(await res.json()).map((r) => Body.parse(r.body));
    const second = all.reverse().find((b) => JSON.stringify(b.messages.at(-1)).includes(marker2));
    const firstUser = second?.messages.find((m) => m.role === 'user');
    expect(JSON.stringify(firstUser)).toContain(`data:image/png;base64,${b64(PNG)}`);
  });
});
