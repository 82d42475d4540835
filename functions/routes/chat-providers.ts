import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { keyRingOrFail } from '../lib/keyring';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import { createProvider, deleteProvider, listProviders, ProviderType, updateProvider } from '../services/chat-models';

const ProviderSchema = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    display_name: z.string(),
    enabled: z.boolean(),
    base_url: z.string(),
    has_api_key: z.boolean(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('ChatProvider');

const BaseUrl = z
  .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
  .max(2048)
  .or(z.literal(''));
const DisplayName = z.string().trim().max(128);
const ApiKey = z.string().max(4096);

const managed = authorize('deployment.manage');
const IdParams = z.object({ id: UuidParam('id') });

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/providers',
      summary: 'List LLM providers (owner)',
      middleware: managed,
      responses: { 200: jsonResponse(z.array(ProviderSchema), 'Providers; API keys are never returned'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json(await listProviders(c.var.db), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/providers',
      summary: 'Add an LLM provider (owner)',
      middleware: managed,
      request: {
        body: jsonBody(
          z
            .object({
              provider: ProviderType,
              display_name: DisplayName.optional(),
              api_key: ApiKey.optional(),
              base_url: BaseUrl.optional(),
              enabled: z.boolean().optional(),
            })
            .strict(),
        ),
      },
      responses: { 201: jsonResponse(ProviderSchema, 'The provider'), ...errorResponses(400, 401, 403, 409) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      return c.json(await createProvider(c.var.db, ring, c.var.actor.userId, body), 201);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/providers/{id}',
      summary: 'Change a provider (owner); `api_key: null` clears the key',
      middleware: managed,
      request: {
        params: IdParams,
        body: jsonBody(
          z
            .object({
              display_name: DisplayName.optional(),
              api_key: ApiKey.nullable().optional(),
              base_url: BaseUrl.optional(),
              enabled: z.boolean().optional(),
            })
            .strict(),
        ),
      },
      responses: { 200: jsonResponse(ProviderSchema, 'The provider'), ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      return c.json(await updateProvider(c.var.db, ring, id, c.req.valid('json')), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/providers/{id}',
      summary: 'Delete a provider (owner): its model configs are soft-deleted, history stays readable',
      middleware: managed,
      request: { params: IdParams },
      responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const out = await deleteProvider(c.var.db, id);
      console.log(JSON.stringify({ level: 'info', msg: 'chat provider deleted', id, ...out }));
      return c.body(null, 204);
    },
  );

export default app;
