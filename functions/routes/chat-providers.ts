import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { keyRingOrFail } from '../core/keyring';
import { errorResponses, IdParams, jsonBody, jsonResponse, router } from '../lib/openapi';
import { createProvider, deleteProvider, listProviders, updateProvider } from '../services/chat-models';
import { NewProvider, Provider, ProviderPatch } from '../core/shapes/models';
import { log } from '../core/log';
import { auditBy, recordWith } from '../services/audit';
import type { Provider as ProviderT } from '../core/shapes/models';

/** What a provider's event says of it: never its key, only whether it has one. */
const providerDetail = (p: ProviderT) => ({ provider: p.provider, display_name: p.display_name, base_url: p.base_url, enabled: p.enabled, has_key: p.has_api_key }); // 'api_key' in a name would be dropped as a secret

const managed = authorize('deployment.manage');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/providers',
      summary: 'List LLM providers (owner)',
      middleware: managed,
      responses: { 200: jsonResponse(z.array(Provider), 'Providers; API keys are never returned'), ...errorResponses(401, 403) },
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
        body: jsonBody(NewProvider),
      },
      responses: { 201: jsonResponse(Provider, 'The provider'), ...errorResponses(400, 401, 403, 409) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      const by = auditBy(c.var.actor, c.req.raw);
      const created = await createProvider(c.var.db, ring, c.var.actor.userId, body, recordWith((p) => ({ action: 'provider.created', ...by, target_type: 'provider', target_id: p.id, detail: providerDetail(p) })));
      return c.json(created, 201);
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
        body: jsonBody(ProviderPatch),
      },
      responses: { 200: jsonResponse(Provider, 'The provider'), ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const ring = await keyRingOrFail(c.env.PROVIDER_KEY_ENCRYPTION_KEY);
      const patch = c.req.valid('json');
      const by = auditBy(c.var.actor, c.req.raw);
      const updated = await updateProvider(c.var.db, ring, id, patch, recordWith((p) => ({
        action: 'provider.updated', ...by, target_type: 'provider', target_id: p.id,
        detail: { ...providerDetail(p), fields: Object.keys(patch).sort() },
      })));
      return c.json(updated, 200);
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
      const by = auditBy(c.var.actor, c.req.raw);
      const out = await deleteProvider(c.var.db, id, recordWith((r) => ({ action: 'provider.deleted', ...by, target_type: 'provider', target_id: id, detail: { configs_soft_deleted: r.softDeleted, promoted_default: r.promoted } })));
      log('info', 'chat provider deleted', { id, ...out });
      return c.body(null, 204);
    },
  );

export default app;
