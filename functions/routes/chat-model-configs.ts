import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, IdParams, jsonBody, jsonResponse, router } from '../lib/openapi';
import {
  createModelConfig,
  deleteModelConfig,
  listModelConfigs,
  listUsableModels,
  updateModelConfig,
} from '../services/chat-models';
import { ModelConfig, ModelConfigPatch, NewModelConfig, UsableModel } from '../core/shapes/models';
import { auditBy, recordWith } from '../services/audit';

/** What a model config's event says of it. */
const configDetail = (m: ModelConfig) => ({ provider: m.provider, model: m.model, display_name: m.display_name, enabled: m.enabled, is_default: m.is_default });

const managed = authorize('deployment.manage');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/model-configs',
      summary: 'List live model configs (owner)',
      middleware: managed,
      responses: { 200: jsonResponse(z.array(ModelConfig), 'provider, model ASC; updated_at, id DESC'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json(await listModelConfigs(c.var.db), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/model-configs',
      summary: 'Add a model config (owner)',
      middleware: managed,
      request: { body: jsonBody(NewModelConfig) },
      responses: { 201: jsonResponse(ModelConfig, 'The model config'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const by = auditBy(c.var.actor, c.req.raw);
      const created = await createModelConfig(c.var.db, c.var.actor.userId, c.req.valid('json'), recordWith((m) => ({ action: 'model_config.created', ...by, target_type: 'model_config', target_id: m.id, detail: configDetail(m) })));
      return c.json(created, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/model-configs/{id}',
      summary: 'Change a model config (owner)',
      middleware: managed,
      request: { params: IdParams, body: jsonBody(ModelConfigPatch) },
      responses: { 200: jsonResponse(ModelConfig, 'The model config'), ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const by = auditBy(c.var.actor, c.req.raw);
      const updated = await updateModelConfig(c.var.db, c.var.actor.userId, id, patch, recordWith((m) => ({
        action: 'model_config.updated', ...by, target_type: 'model_config', target_id: m.id,
        detail: { ...configDetail(m), fields: Object.keys(patch).sort() },
      })));
      return c.json(updated, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/model-configs/{id}',
      summary: 'Soft-delete a model config (owner); promotes another default when needed',
      middleware: managed,
      request: { params: IdParams },
      responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 403, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const by = auditBy(c.var.actor, c.req.raw);
      await deleteModelConfig(c.var.db, id, recordWith((r) => ({ action: 'model_config.deleted', ...by, target_type: 'model_config', target_id: id, detail: { promoted_default: r.promoted } })));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/models',
      summary: 'Models a user can chat with: live, enabled, provider enabled',
      middleware: [authorize('self')] as const,
      responses: { 200: jsonResponse(z.array(UsableModel), 'Usable models'), ...errorResponses(401) },
    }),
    async (c) => c.json(await listUsableModels(c.var.db), 200),
  );

export default app;
