/**
 * `vigil replay --group G --from TRIM_HORIZON|LATEST|<ISO time>|<sequence>`: rewinds a running
 * Vigil's group and shows its progress until it has caught up again.
 */
import { ProgressBar } from './progress.js';
import { parsePosition } from '../stream/positions.js';

interface GroupView {
  name: string;
  running: boolean;
  caughtUp: boolean;
  lag: number | null;
  handledRecords: number;
}

export interface ReplayOptions {
  url: string;
  adminKey: string;
  group: string;
  from: string;
  pollMs?: number;
  /** Gives up after this long (default: never). */
  timeoutMs?: number;
  bar?: ProgressBar;
}

async function call(url: string, adminKey: string, init: RequestInit = {}): Promise<unknown> {
  const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', ...init.headers } });
  const body = (await res.json().catch(() => ({}))) as { detail?: string };
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status}: ${body.detail ?? ''}`);
  return body;
}

export async function runReplay(o: ReplayOptions): Promise<{ records: number; ms: number }> {
  parsePosition(o.from); // a typo fails here, before anything is rewound
  const bar = o.bar ?? new ProgressBar();
  const started = Date.now();
  const groupOf = async () => {
    const { groups } = (await call(`${o.url}/v1/admin/groups`, o.adminKey)) as { groups: GroupView[] };
    const g = groups.find((x) => x.name === o.group);
    if (!g) throw new Error(`group ${o.group} does not run at ${o.url}`);
    return g;
  };
  const before = await groupOf();
  await call(`${o.url}/v1/admin/groups/${encodeURIComponent(o.group)}/replay`, o.adminKey, { method: 'POST', body: JSON.stringify({ from: o.from }) });
  // Stats arrive from the group thread every second; wait for the first after the rewind.
  let g = await groupOf();
  let total = Math.max(g.lag ?? 0, 1);
  for (;;) {
    const done = Math.max(0, g.handledRecords - before.handledRecords);
    const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
    total = Math.max(total, done + (g.lag ?? 0));
    bar.update(total - (g.lag ?? 0), total, `${done.toLocaleString('en')} records replayed, ${Math.round(rate).toLocaleString('en')} records/s, lag ${g.lag ?? '?'}`);
    if (g.caughtUp && g.lag === 0 && Date.now() - started > 1000) break;
    if (o.timeoutMs && Date.now() - started > o.timeoutMs) throw new Error(`group ${o.group} did not catch up within ${o.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
    g = await groupOf();
  }
  const records = g.handledRecords - before.handledRecords;
  const ms = Date.now() - started;
  bar.done(`group ${o.group} caught up: ${records.toLocaleString('en')} records replayed in ${(ms / 1000).toFixed(1)} s`);
  return { records, ms };
}
