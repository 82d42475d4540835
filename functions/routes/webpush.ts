import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { settings } from '../env';
import { conflict, tooManyRequests } from '../core/errors';
import { keyRingOrFail } from '../core/keyring';
import { errorResponses, jsonBody, jsonResponse, router, validationError } from '../lib/openapi';
import { getWebpushEnabled } from '../../sql/generated/webpush.queries';
import { MAX_SUBSCRIPTIONS, pushCenterName, subscriptionSchema, TEST_LIMIT, TEST_WINDOW_MS, vapidKeys } from '../core/webpush';

const self = authorize('self');
const Subscribe = z
  .object({ endpoint: z.string().max(2048), auth_key: z.string().max(256), p256dh_key: z.string().max(256) })
  .strict()
  .openapi('WebpushSubscription');
const Settings = z.object({ enabled: z.boolean() }).strict().openapi('WebpushSettings');

const center = (env: Env, userId: string) => env.PUSH_CENTER.getByName(pushCenterName(userId));

/** GET /api/v2/webpush/vapid: public, browsers need it before subscribing. */
export const vapid = router().openapi(
  createRoute({
    method: 'get',
    path: '/vapid',
    summary: 'The VAPID public key (base64url, uncompressed P-256 point) for PushManager.subscribe',
    security: [],
    responses: { 200: jsonResponse(z.object({ public_key: z.string() }), 'The key'), ...errorResponses(503) },
  }),
  async (c) => {
    const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
    return c.json({ public_key: (await vapidKeys(c.var.db, ring)).publicKey }, 200);
  },
);

/** /api/v2/users/me/webpush/...: the signed-in user's subscriptions and setting. */
export const mine = router()
  .openapi(
    createRoute({
      method: 'post',
      path: '/subscription',
      summary: `Subscribe this browser (upsert on endpoint); https endpoints of known push services only; at most ${MAX_SUBSCRIPTIONS} per user`,
      middleware: self,
      request: { body: jsonBody(Subscribe) },
      responses: { 204: { description: 'Subscribed' }, ...errorResponses(400, 401, 409) },
    }),
    async (c) => {
      const s = settings(c.env);
      const schema = subscriptionSchema({ allowInsecure: s.WEBPUSH_ALLOW_INSECURE_ENDPOINTS, extraHosts: s.WEBPUSH_ALLOWED_HOSTS });
      const parsed = await schema.safeParseAsync(c.req.valid('json'));
      if (!parsed.success) throw validationError(parsed.error);
      if (!(await center(c.env, c.var.actor.userId).subscribe(c.var.actor.userId, parsed.data))) {
        throw conflict(`At most ${MAX_SUBSCRIPTIONS} Web Push subscriptions per user: unsubscribe one first.`);
      }
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/subscription',
      summary: 'Unsubscribe an endpoint (204 whether or not it was subscribed)',
      middleware: self,
      request: { body: jsonBody(z.object({ endpoint: z.string().min(1).max(2048) }).strict()) },
      responses: { 204: { description: 'Unsubscribed' }, ...errorResponses(400, 401) },
    }),
    async (c) => {
      await center(c.env, c.var.actor.userId).unsubscribe(c.var.actor.userId, c.req.valid('json').endpoint);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/test',
      summary: `Send a test notification to every subscription of yours (at most ${TEST_LIMIT} every ${TEST_WINDOW_MS / 60_000} minutes)`,
      middleware: self,
      responses: { 204: { description: 'Sent' }, ...errorResponses(401, 429) },
    }),
    async (c) => {
      const sent = await center(c.env, c.var.actor.userId).sendTest(c.var.actor.userId, {
        title: 'chatd-edge',
        body: 'Test notification: pushes reach this browser.',
        data: { url: '/', chat_id: null },
      });
      if (!sent.ok) throw tooManyRequests('Too many test notifications: try again later.', sent.retryAfterMs);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/settings',
      summary: 'Whether turn notifications are on for you',
      middleware: self,
      responses: { 200: jsonResponse(Settings, 'The setting'), ...errorResponses(401) },
    }),
    async (c) => {
      const [row] = await getWebpushEnabled.run({ user_id: c.var.actor.userId }, c.var.db);
      return c.json({ enabled: row?.webpush_enabled ?? true }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/settings',
      summary: 'Turn notifications on or off for you (the test notification is always sent)',
      middleware: self,
      request: { body: jsonBody(Settings) },
      responses: { 200: jsonResponse(Settings, 'The setting'), ...errorResponses(400, 401) },
    }),
    async (c) => {
      const enabled = await center(c.env, c.var.actor.userId).setEnabled(c.var.actor.userId, c.req.valid('json').enabled);
      return c.json({ enabled }, 200);
    },
  );
