import { createRoute, z } from '@hono/zod-openapi';
import { authorize } from '../authz';
import { errorResponses, jsonBody, jsonResponse, router } from '../lib/openapi';
import { getSetting, SETTINGS } from '../core/site-config';
import { auditBy } from '../services/audit';
import { saveSetting } from '../services/settings';
import { SpendLimit } from '../core/shapes/usage';
import { TitleModel } from '../core/shapes/export';
import { badRequest } from '../core/errors';
import { getChatModelConfigById } from '../../sql/generated/chat_model_configs.queries';
import { normalizeAmount } from '../core/usage-cost';
import { invalidateModelCache } from '../core/model-resolve';

const owner = authorize('deployment.manage');

const RetentionDays = z.object({ retention_days: SETTINGS.retention_days.schema }).strict().openapi('RetentionDays');
const AutoArchiveDays = z.object({ auto_archive_days: SETTINGS.auto_archive_days.schema }).strict().openapi('AutoArchiveDays');
const SystemPrompt = z.object({ system_prompt: SETTINGS.system_prompt.schema }).strict().openapi('SystemPrompt');

const app = router()
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/retention-days',
      summary: 'Days an archived chat is kept before the purge deletes it (owner); 0 disables the purge',
      middleware: owner,
      responses: { 200: jsonResponse(RetentionDays, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json({ retention_days: await getSetting(c.var.db, 'retention_days') }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/retention-days',
      summary: 'Set the retention of archived chats (owner)',
      middleware: owner,
      request: { body: jsonBody(RetentionDays) },
      responses: { 200: jsonResponse(RetentionDays, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => c.json({ retention_days: await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'retention_days', c.req.valid('json').retention_days) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/auto-archive-days',
      summary: 'Days of inactivity after which chats are archived (owner); 0 is off',
      middleware: owner,
      responses: { 200: jsonResponse(AutoArchiveDays, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json({ auto_archive_days: await getSetting(c.var.db, 'auto_archive_days') }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/auto-archive-days',
      summary: 'Set auto-archiving (owner)',
      middleware: owner,
      request: { body: jsonBody(AutoArchiveDays) },
      responses: { 200: jsonResponse(AutoArchiveDays, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) =>
      c.json({ auto_archive_days: await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'auto_archive_days', c.req.valid('json').auto_archive_days) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/system-prompt',
      summary: 'The system prompt new chats start with (owner)',
      middleware: owner,
      responses: { 200: jsonResponse(SystemPrompt, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json({ system_prompt: await getSetting(c.var.db, 'system_prompt') }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/system-prompt',
      summary: 'Set the system prompt for new chats (owner); "" for none',
      middleware: owner,
      request: { body: jsonBody(SystemPrompt) },
      responses: { 200: jsonResponse(SystemPrompt, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => c.json({ system_prompt: await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'system_prompt', c.req.valid('json').system_prompt) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/spend-limit',
      summary: "The default spend limit per user (owner); a user's own limit overrides it",
      middleware: owner,
      responses: { 200: jsonResponse(SpendLimit, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json(await getSetting(c.var.db, 'spend_limit'), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/spend-limit',
      summary: "Set the default spend limit per user (owner); each user's meter applies it within 30 s",
      middleware: owner,
      request: { body: jsonBody(SpendLimit) },
      responses: { 200: jsonResponse(SpendLimit, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const { period, amount } = c.req.valid('json');
      return c.json(await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'spend_limit', { period, amount: normalizeAmount(amount) }), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/config/title-model',
      summary: "The model config that writes chats' titles after their first answer (owner); null: each chat's own model",
      middleware: owner,
      responses: { 200: jsonResponse(TitleModel, 'The setting'), ...errorResponses(401, 403) },
    }),
    async (c) => c.json({ title_model_config_id: (await getSetting(c.var.db, 'title_model')).model_config_id }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/config/title-model',
      summary: "Choose the model config that writes chats' titles (owner); null: each chat's own model",
      middleware: owner,
      request: { body: jsonBody(TitleModel) },
      responses: { 200: jsonResponse(TitleModel, 'The setting'), ...errorResponses(400, 401, 403) },
    }),
    async (c) => {
      const id = c.req.valid('json').title_model_config_id;
      if (id !== null) {
        const [cfg] = await getChatModelConfigById.run({ id }, c.var.db);
        if (!cfg || cfg.deleted) throw badRequest('Unknown model config.', [{ field: 'title_model_config_id', detail: 'no live model config has this id' }]);
      }
      const current = await getSetting(c.var.db, 'title_model');
      await saveSetting(c.var.db, auditBy(c.var.actor, c.req.raw), 'title_model', { ...current, model_config_id: id });
      // Chat objects read the setting with their model resolution: this isolate's cache drops it now.
      invalidateModelCache();
      return c.json({ title_model_config_id: id }, 200);
    },
  );

export default app;
