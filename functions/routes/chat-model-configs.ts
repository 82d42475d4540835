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
    async (c) => c.json(await createModelConfig(c.var.db, c.var.actor.userId, c.req.valid('json')), 201),
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
      return c.json(await updateModelConfig(c.var.db, c.var.actor.userId, id, c.req.valid('json')), 200);
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
      await deleteModelConfig(c.var.db, id);
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
