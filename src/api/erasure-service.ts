/**
 * The right to erasure: a resident's personal data removed from the store (name, birth date,
 * home, medical notes, contacts, their detection and escalation settings), the warehouse (their
 * readings and everything derived) and the archive (their lines in every object), and a record
 * that it was done — kept in the store as `erasure:<residentId>`, with who asked and the counts.
 *
 * What stays: the resident's pseudonymous id on alerts (with no name), device ids, and the
 * stream, which keeps raw readings until its retention ends (`stream.retentionHours`); a replay
 * of the warehouse or archive group before then would bring readings back (docs/security.md).
 */
import { VigilError } from '../core/errors.js';
import type { Store } from '../store/types.js';
import { residentSettingsKey } from '../detectors/detection-settings.js';
import { residentPolicyKey } from '../notify/escalation/escalation-policy.js';

export interface ErasureTargets {
  store: Store;
  /** The warehouse's erase (through the thread that owns DuckDB when it runs here), or null when not reachable from this process. */
  eraseWarehouse: ((residentId: string) => Promise<{ readings: number; sleepSessions: number; dailyActivity: number }>) | null;
  eraseArchive: (residentId: string) => Promise<{ objects: number; lines: number }>;
}

export interface ErasureRecord {
  residentId: string;
  by: string;
  at: string;
  store: { contacts: number };
  warehouse: { readings: number; sleepSessions: number; dailyActivity: number };
  archive: { objects: number; lines: number };
}

export const erasureKey = (residentId: string) => `erasure:${residentId}`;

export async function eraseResident(t: ErasureTargets, residentId: string, by: string): Promise<ErasureRecord> {
  if (!t.eraseWarehouse) throw new VigilError('UNAVAILABLE', 'the DuckDB warehouse is reachable only in the process that runs the warehouse group');
  const resident = await t.store.getResident(residentId);
  if (!resident) throw new VigilError('NOT_FOUND', `no resident ${residentId}`);
  // Warehouse and archive first: if either fails, the store still names the resident and the
  // erasure can be run again; every step is idempotent.
  const warehouse = await t.eraseWarehouse(residentId);
  const archive = await t.eraseArchive(residentId);
  let contacts = 0;
  for (const c of await t.store.listContacts(residentId)) if (await t.store.deleteContact(c.id)) contacts++;
  await t.store.updateResident(residentId, { name: '(erased)', birthDate: null, homeLocation: null, medicalNotes: null });
  await t.store.setSetting(residentSettingsKey(residentId), '{}');
  await t.store.setSetting(residentPolicyKey(residentId), '{}');
  const record: ErasureRecord = { residentId, by, at: new Date().toISOString(), store: { contacts }, warehouse, archive };
  await t.store.setSetting(erasureKey(residentId), JSON.stringify(record));
  return record;
}
