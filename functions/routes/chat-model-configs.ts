import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, jsonBody, jsonResponse, router, UuidParam } from '../lib/openapi';
import {
  createModelConfig,
  deleteModelConfig,
  listModelConfigs,
  listUsableModels,
  ModelOptions,
  updateModelConfig,
} from '../services/chat-models';
import { Pricing } from '../services/usage-cost';

const PricingSchema = z.object(Pricing.shape).strict().openapi('ChatModelPricing', {
  description:
    "Prices per million tokens, decimal strings in the deployment's currency (at most 6 decimals). Cache reads and " +
    'writes default to the input price, reasoning to the output price.',
});

const ModelConfigSchema = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    model: z.string(),
    display_name: z.string(),
    enabled: z.boolean(),
    is_default: z.boolean(),
    context_limit: z.number().int(),
    compression_threshold: z.number().int(),
    options: ModelOptions,
    pricing: PricingSchema.nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('ChatModelConfig');

const UsableModelSchema = z
  .object({
    id: z.uuid(),
    provider: z.string(),
    model: z.string(),
    display_name: z.string(),
    is_default: z.boolean(),
    context_limit: z.number().int(),
    pricing: PricingSchema.nullable(),
  })
  .openapi('ChatModel');

const Fields = {
  provider: z.string().min(1).max(64),
  model: z.string().trim().min(1).max(256),
  display_name: z.string().trim().max(256).optional(),
  enabled: z.boolean().optional(),
  is_default: z.boolean().optional(),
  context_limit: z.number().int().positive({ message: 'must be greater than 0' }).max(100_000_000),
  compression_threshold: z.number().int().min(0).max(100).optional(),
  options: ModelOptions.optional(),
  pricing: PricingSchema.nullable().optional(),
};
const CreateBody = z.object(Fields).strict();
const PatchBody = z.object(Fields).partial().strict();

const managed = authorize('deployment.manage');
const IdParams = z.object({ id: UuidParam('id') });

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/model-configs',
      summary: 'List live model configs (owner)',
      middleware: managed,
      responses: { 200: jsonResponse(z.array(ModelConfigSchema), 'provider, model ASC; updated_at, id DESC'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json(await listModelConfigs(c.var.db), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/model-configs',
      summary: 'Add a model config (owner)',
      middleware: managed,
      request: { body: jsonBody(CreateBody) },
      responses: { 201: jsonResponse(ModelConfigSchema, 'The model config'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => c.json(await createModelConfig(c.var.db, c.var.actor.userId, c.req.valid('json')), 201),
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/model-configs/{id}',
      summary: 'Change a model config (owner)',
      middleware: managed,
      request: { params: IdParams, body: jsonBody(PatchBody) },
      responses: { 200: jsonResponse(ModelConfigSchema, 'The model config'), ...errorResponses(400, 401, 403, 404) },
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
      responses: { 200: jsonResponse(z.array(UsableModelSchema), 'Usable models'), ...errorResponses(401) },
    }),
    async (c) => c.json(await listUsableModels(c.var.db), 200),
  );

export default app;
