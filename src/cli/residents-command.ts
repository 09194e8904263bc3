/**
 * `vigil residents erase ID --by NAME`: asks a running Vigil to erase a resident's personal
 * data from the store, the warehouse and the archive (docs/security.md), and prints the record
 * it keeps of that.
 */
export interface EraseOptions {
  url: string;
  adminKey: string;
  residentId: string;
  by: string;
}

export async function runEraseResident(o: EraseOptions): Promise<Record<string, unknown>> {
  const res = await fetch(`${o.url.replace(/\/+$/, '')}/v1/residents/${encodeURIComponent(o.residentId)}/erase`, {
    method: 'POST',
    headers: { authorization: `Bearer ${o.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ by: o.by }),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(`erase ${o.residentId}: ${res.status} ${String(body.detail ?? body.title ?? '')}`);
  return body;
}

export function formatErasure(r: Record<string, any>): string {
  return (
    `erased resident ${r.residentId} (by ${r.by}, ${r.at}):\n` +
    `  store      ${r.store.contacts} contacts deleted; name, birth date, home and medical notes removed\n` +
    `  warehouse  ${r.warehouse.readings} readings, ${r.warehouse.sleepSessions} sleep sessions, ${r.warehouse.dailyActivity} days of activity deleted\n` +
    `  archive    ${r.archive.lines} lines removed from ${r.archive.objects} objects\n`
  );
}
