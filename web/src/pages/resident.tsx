// One resident: live status, charts over 24 h / 7 d / 30 d with alerts marked, sleep, activity,
// alerts, contacts (with Web Push for this browser) and the escalation policy.
import { useMemo, useState } from 'preact/hooks';
import { api, query } from '../api';
import { AlertItem } from '../components/alert-item';
import { SeverityPill } from '../components/severity';
import { TimeChart, type ChartMarker, type ChartSeries } from '../components/time-chart';
import { age, ago, alertLabel, CHANNEL_LABELS, dateTime, duration, round } from '../format';
import { useLoad, useModel, useNow } from '../hooks';
import type { Model } from '../model';
import { pushSupported, subscribeThisBrowser } from '../push';
import type { ActivityDay, Alert, Contact, EscalationView, ResidentDetail, Severity, SleepSession, VitalsBucket } from '../types';

const RANGES = {
  '24h': { label: '24 hours', ms: 86_400_000, step: '1m', days: 2 },
  '7d': { label: '7 days', ms: 7 * 86_400_000, step: '15m', days: 7 },
  '30d': { label: '30 days', ms: 30 * 86_400_000, step: '1h', days: 30 },
} as const;
type Range = keyof typeof RANGES;

const SEVERITY_COLOURS: Record<Severity, string> = { critical: '#b00020', high: '#c2410c', medium: '#a16207', low: '#475569' };
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function ResidentPage({ model, residentId }: { model: Model; residentId: string }) {
  useModel(model);
  const now = useNow(15_000);
  const [range, setRange] = useState<Range>('24h');
  const r = RANGES[range];
  // The period is fixed when the range is chosen, so live re-renders do not reload the charts.
  const period = useMemo(() => ({ from: Date.now() - r.ms, to: Date.now() }), [range, residentId]);
  const id = encodeURIComponent(residentId);

  const detail = useLoad(() => (model.isAdminKey ? api<ResidentDetail>(`/v1/residents/${id}`) : Promise.resolve(null)), [residentId]);
  const vitals = useLoad(
    () => (model.can('vitals:read') ? api<{ vitals: VitalsBucket[] }>(`/v1/residents/${id}/vitals${query({ from: period.from, to: period.to, step: r.step })}`).then((x) => x.vitals) : Promise.resolve([])),
    [period],
  );
  const sleep = useLoad(
    () => (model.can('sleep:read') ? api<{ sessions: SleepSession[] }>(`/v1/residents/${id}/sleep${query({ from: day(period.to - r.days * 86_400_000), to: day(period.to) })}`).then((x) => x.sessions) : Promise.resolve([])),
    [period],
  );
  const activity = useLoad(
    () => (model.can('activity:read') ? api<{ days: ActivityDay[] }>(`/v1/residents/${id}/activity${query({ from: day(period.to - r.days * 86_400_000), to: day(period.to) })}`).then((x) => x.days) : Promise.resolve([])),
    [period],
  );
  const alerts = useLoad(
    () => (model.can('alerts:read') ? api<{ alerts: Alert[] }>(`/v1/alerts${query({ residentId, limit: 200 })}`).then((x) => x.alerts) : Promise.resolve([])),
    [residentId, model.alertsOf(residentId).length],
  );

  const card = model.card(residentId);
  const last = card?.lastReading;
  const name = detail.data?.name ?? card?.name ?? residentId;
  const years = age(detail.data?.birthDate ?? null, now);
  const markers: ChartMarker[] = useMemo(
    () => (alerts.data ?? []).filter((a) => Date.parse(a.openedAt) >= period.from).map((a) => ({ at: Date.parse(a.openedAt), color: SEVERITY_COLOURS[a.severity] })),
    [alerts.data, period],
  );
  const charts = useMemo(() => chartsOf(vitals.data ?? []), [vitals.data]);

  return (
    <>
      <p><a href="#/">← All residents</a></p>
      <h1>{name}{years !== null && <span class="muted">, {years}</span>}</h1>
      <p class="muted">
        {last ? `Seen ${ago(last.receivedAt, now)} · heart rate ${round(last.hr)} bpm · SpO2 ${round(last.spo2)} % · skin ${round(last.skinTemp, 1)} °C` : 'No readings yet'}
        {last?.battery != null && ` · battery ${Math.round(last.battery)} %`}
        {detail.data?.devices.length ? ` · band ${detail.data.devices.map((d) => d.deviceId).join(', ')}` : ''}
      </p>
      {detail.data?.medicalNotes && <p class="notes"><strong>Notes:</strong> {detail.data.medicalNotes}</p>}

      {model.alertsOf(residentId).map((a) => (
        <AlertItem key={a.id} alert={a} model={model} now={now} />
      ))}

      <div class="tabs" role="group" aria-label="Period">
        {(Object.keys(RANGES) as Range[]).map((k) => (
          <button type="button" key={k} aria-pressed={k === range} onClick={() => setRange(k)}>{RANGES[k].label}</button>
        ))}
      </div>
      {vitals.error && <p class="error" role="alert">{vitals.error}</p>}
      {model.can('vitals:read') && (
        <div class="charts">
          <TimeChart title="Heart rate" unit="bpm" times={charts.times} from={period.from} to={period.to} series={charts.hr} markers={markers} />
          <TimeChart title="SpO2" unit="%" times={charts.times} from={period.from} to={period.to} series={charts.spo2} markers={markers} />
          <TimeChart title="Skin temperature" unit="°C" times={charts.times} from={period.from} to={period.to} series={charts.temp} markers={markers} />
          <TimeChart title="Steps" unit="steps" times={charts.times} from={period.from} to={period.to} series={charts.steps} markers={markers} />
        </div>
      )}
      {markers.length > 0 && <p class="muted legend">Vertical lines mark alerts, coloured by severity.</p>}

      <div class="columns">
        {model.can('sleep:read') && <SleepBars sessions={sleep.data ?? []} />}
        {model.can('activity:read') && <ActivityTable days={activity.data ?? []} />}
      </div>

      {model.can('alerts:read') && (
        <section aria-labelledby="history-title">
          <h2 id="history-title">Alert history</h2>
          {(alerts.data ?? []).length === 0 ? (
            <p class="muted">No alerts.</p>
          ) : (
            <table>
              <thead><tr><th>Opened</th><th>Alert</th><th>State</th><th>Note</th></tr></thead>
              <tbody>
                {(alerts.data ?? []).slice(0, 50).map((a) => (
                  <tr key={a.id}>
                    <td>{dateTime(a.openedAt)}</td>
                    <td><SeverityPill severity={a.severity} /> <a href={`#/alerts/${encodeURIComponent(a.id)}`}>{alertLabel(a.type)}</a></td>
                    <td>{a.state}</td>
                    <td>{a.ackNote ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      {detail.data && <Contacts contacts={detail.data.contacts} />}
      {model.isAdminKey && <EscalationPolicy residentId={residentId} contacts={detail.data?.contacts ?? []} />}
    </>
  );
}

function chartsOf(buckets: VitalsBucket[]) {
  const pick = (f: (b: VitalsBucket) => number | null) => buckets.map(f);
  const s = (label: string, color: string, values: (number | null)[], extra: Partial<ChartSeries> = {}): ChartSeries => ({ label, color, values, ...extra });
  return {
    times: buckets.map((b) => Date.parse(b.bucket)),
    hr: [s('average', '#b00020', pick((b) => b.hrAvg)), s('min', '#b0002099', pick((b) => b.hrMin), { bound: true }), s('max', '#b0002099', pick((b) => b.hrMax), { bound: true })],
    spo2: [s('average', '#1d4ed8', pick((b) => b.spo2Avg)), s('min', '#1d4ed899', pick((b) => b.spo2Min), { bound: true })],
    temp: [s('average', '#a16207', pick((b) => b.skinTempAvg))],
    steps: [s('steps', '#0b6e4f', pick((b) => b.steps), { bars: true })],
  };
}

/** Each night as a bar from bedtime to waking, on an evening-to-noon axis. */
function SleepBars({ sessions }: { sessions: SleepSession[] }) {
  const AXIS_START_H = 18; // 18:00 local …
  const AXIS_HOURS = 18; // … to 12:00
  const offset = (iso: string) => {
    const d = new Date(iso);
    return (((d.getHours() - AXIS_START_H + 24) % 24) + d.getMinutes() / 60) / AXIS_HOURS;
  };
  return (
    <section aria-labelledby="sleep-title">
      <h2 id="sleep-title">Sleep</h2>
      {sessions.length === 0 ? (
        <p class="muted">No nights recorded in this period.</p>
      ) : (
        <ul class="sleep">
          {[...sessions].reverse().map((s) => {
            const left = Math.min(1, offset(s.start));
            const width = Math.max(0.01, Math.min(1 - left, (Date.parse(s.end) - Date.parse(s.start)) / (AXIS_HOURS * 3_600_000)));
            return (
              <li key={`${s.deviceId}-${s.night}`}>
                <span class="night">{s.night}</span>
                <span class="track" aria-hidden="true">
                  <span class="bar" style={{ left: `${left * 100}%`, width: `${width * 100}%` }} />
                </span>
                <span>{duration(s.totalSleepMin)} · {Math.round(s.efficiency * 100)} % · woke {s.awakenings}×</span>
              </li>
            );
          })}
        </ul>
      )}
      <p class="muted legend">Bars run from 18:00 to 12:00 the next day.</p>
    </section>
  );
}

function ActivityTable({ days }: { days: ActivityDay[] }) {
  return (
    <section aria-labelledby="activity-title">
      <h2 id="activity-title">Activity</h2>
      {days.length === 0 ? (
        <p class="muted">No activity recorded in this period.</p>
      ) : (
        <table>
          <thead><tr><th>Day</th><th>Steps</th><th>Active</th><th>Longest still</th><th>Worn</th></tr></thead>
          <tbody>
            {[...days].reverse().map((d) => (
              <tr key={`${d.deviceId}-${d.day}`}>
                <td>{d.day}{d.final ? '' : ' (so far)'}</td>
                <td>{d.steps.toLocaleString()}</td>
                <td>{duration(d.activeMinutes)}</td>
                <td>{duration(d.longestSedentaryMin)}</td>
                <td>{duration(d.wornMinutes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Contacts({ contacts }: { contacts: Contact[] }) {
  const [status, setStatus] = useState<Record<string, string>>({});
  const subscribe = async (c: Contact) => {
    setStatus((s) => ({ ...s, [c.id]: 'Asking the browser…' }));
    try {
      await subscribeThisBrowser(c.id);
      setStatus((s) => ({ ...s, [c.id]: `This browser now gets ${c.name}'s push notifications.` }));
    } catch (err) {
      setStatus((s) => ({ ...s, [c.id]: (err as Error).message }));
    }
  };
  return (
    <section aria-labelledby="contacts-title">
      <h2 id="contacts-title">Contacts</h2>
      {contacts.length === 0 ? (
        <p class="muted">No contacts: nobody is paged for this resident.</p>
      ) : (
        <ul class="contacts">
          {[...contacts].sort((a, b) => (a.preferences.priority ?? 9) - (b.preferences.priority ?? 9)).map((c) => (
            <li key={c.id}>
              <strong>{c.name}</strong>
              {c.preferences.priority !== undefined && <span class="muted"> · priority {c.preferences.priority}</span>}
              {c.phone && <> · <a href={`tel:${c.phone}`}>{c.phone}</a></>}
              {c.email && <> · {c.email}</>}
              {c.preferences.channels && <span class="muted"> · {c.preferences.channels.map((ch) => CHANNEL_LABELS[ch] ?? ch).join(', ')}</span>}
              {pushSupported() && (
                <button type="button" class="secondary small" onClick={() => void subscribe(c)}>Send {c.name}'s alerts to this browser</button>
              )}
              {status[c.id] && <p class="hint" role="status">{status[c.id]}</p>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function EscalationPolicy({ residentId, contacts }: { residentId: string; contacts: Contact[] }) {
  const policy = useLoad(() => api<EscalationView>(`/v1/residents/${encodeURIComponent(residentId)}/escalation`), [residentId]);
  if (!policy.data) return null;
  const who = (c: string | string[]) => (Array.isArray(c) ? c.map((id) => contacts.find((x) => x.id === id)?.name ?? id).join(', ') : `${c} contacts`);
  return (
    <section aria-labelledby="escalation-title">
      <h2 id="escalation-title">Escalation</h2>
      <table>
        <thead><tr><th>Severity</th><th>Steps</th><th>Repeats</th></tr></thead>
        <tbody>
          {(Object.entries(policy.data.effective) as [Severity, EscalationView['effective'][Severity]][]).map(([sev, { policy: p, source }]) => (
            <tr key={sev}>
              <td><SeverityPill severity={sev} /> <span class="muted">({source})</span></td>
              <td>
                <ol class="steps">
                  {p.steps.map((s, i) => (
                    <li key={i}>after {s.afterS < 60 ? `${s.afterS} s` : `${Math.round(s.afterS / 60)} min`}: {who(s.contacts)} by {s.channels.map((ch) => CHANNEL_LABELS[ch] ?? ch).join(', ')}</li>
                  ))}
                </ol>
              </td>
              <td>{p.repeatEveryS ? `every ${Math.round(p.repeatEveryS / 60)} min, ${p.maxRepeats}×` : 'no'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
