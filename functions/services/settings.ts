/** Owners changing deployment settings: each change and its `settings.updated` event in one transaction. */
import type { Conn } from '../core/db';
import { setSetting, type SettingName, type SettingValue } from '../core/site-config';
import { audited, type AuditRecord } from './audit';

/** Saves a setting and its event (the value, strings cut at 500 characters: settings hold no secret). */
export async function saveSetting<N extends SettingName>(
  db: Conn,
  by: Pick<AuditRecord, 'actor' | 'ip'>,
  name: N,
  value: SettingValue<N>,
): Promise<SettingValue<N>> {
  return await audited(
    db,
    (tx) => setSetting(tx, name, value),
    (v) => ({ action: 'settings.updated', ...by, target_type: 'setting', target_id: name, detail: { value: v } }),
  );
}
