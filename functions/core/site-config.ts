/** Deployment settings kept in site_configs, typed, validated, with defaults. Values are stored as JSON text. */
import { z } from 'zod';
import type { Queryable } from './db';
import { getSiteConfig, upsertSiteConfig } from '../../sql/generated/site_configs.queries';
import { McpAllowedHostList } from './shapes/tools';
import { SpendLimit } from './shapes/usage';
import { DEBUG_RUNS_DEFAULT, DebugRunsSetting } from './shapes/operations';
import { log } from './log';

export const SETTINGS = {
  retention_days: { schema: z.number().int().min(0).max(36_500), default: 30 },
  auto_archive_days: { schema: z.number().int().min(0).max(36_500), default: 0 },
  system_prompt: { schema: z.string().max(100_000), default: '' },
  /** Hosts (`host` or `*.domain`) an agent's pinned MCP servers may be on; empty: none. */
  mcp_allowed_hosts: {
    schema: McpAllowedHostList,
    default: [] as string[],
  },
  // The deployment's default spend limit per user (`amount` null: none). Users' meters read it themselves.
  spend_limit: { schema: SpendLimit, default: { period: 'month', amount: null } },
  // Debug runs of model calls (off | errors | all) and how long they are kept. Chat objects read it with the model
  // resolution (functions/core/model-resolve.ts), so a change reaches them within its cache's 30 s.
  debug_runs: { schema: DebugRunsSetting, default: DEBUG_RUNS_DEFAULT },
  /**
   * Titles written by a model (durable-objects/room/titles.ts): the model config (null: the chat's own) and whether
   * titles are written at all (`enabled`: not in the API; the test suites' databases start with it off, so that only
   * the titles suite sees title calls).
   */
  /** How long audit events are kept (the cron purges older ones in batches). */
  audit_retention_days: { schema: z.number().int().min(1).max(36_500), default: 365 },
  title_model: {
    schema: z.object({ model_config_id: z.uuid().nullable(), enabled: z.boolean().default(true) }),
    default: { model_config_id: null, enabled: true } as { model_config_id: string | null; enabled: boolean },
  },
} as const;
export type SettingName = keyof typeof SETTINGS;
export type SettingValue<N extends SettingName> = z.infer<(typeof SETTINGS)[N]['schema']>;

/** A setting's value; its default when unset or unreadable (a bad stored value is logged, never fatal). */
export async function getSetting<N extends SettingName>(conn: Queryable, name: N): Promise<SettingValue<N>> {
  const [row] = await getSiteConfig.run({ key: name }, conn);
  return settingFrom(name, row?.value ?? null);
}

/** A setting from its stored JSON text (null: unset), as `getSetting` reads it: for statements that read it along. */
export function settingFrom<N extends SettingName>(name: N, stored: string | null): SettingValue<N> {
  const def = SETTINGS[name];
  if (stored === null) return def.default as SettingValue<N>;
  let raw: unknown;
  try {
    raw = JSON.parse(stored);
  } catch {
    raw = undefined;
  }
  const parsed = def.schema.safeParse(raw);
  if (parsed.success) return parsed.data as SettingValue<N>;
  log('warn', 'invalid stored setting, using the default', { setting: name });
  return def.default as SettingValue<N>;
}

export async function setSetting<N extends SettingName>(conn: Queryable, name: N, value: SettingValue<N>): Promise<SettingValue<N>> {
  await upsertSiteConfig.run({ key: name, value: JSON.stringify(value) }, conn);
  return value;
}
