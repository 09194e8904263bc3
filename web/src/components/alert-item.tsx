// One alert: what, who, since when, the evidence, where the escalation is, and the buttons to
// acknowledge or resolve it with a note.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ago, alertLabel, CHANNEL_LABELS, clock, evidenceLines } from '../format';
import { useLoad } from '../hooks';
import type { Model } from '../model';
import { userName } from '../session';
import type { Alert, Notification } from '../types';
import { SeverityPill } from './severity';

/** While an alert escalates, its notifications are re-read this often. */
const ESCALATION_REFRESH_MS = 5_000;

export function AlertItem({ alert, model, now, focused }: { alert: Alert; model: Model; now: number; focused?: boolean }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const notifications = useLoad(
    () => api<{ notifications: Notification[] }>(`/v1/alerts/${encodeURIComponent(alert.id)}/notifications`).then((r) => r.notifications),
    [alert.id, alert.state],
  );
  useEffect(() => {
    if (alert.state === 'resolved') return;
    const t = setInterval(notifications.reload, ESCALATION_REFRESH_MS);
    return () => clearInterval(t);
  }, [alert.id, alert.state]);

  const act = async (action: 'ack' | 'resolve') => {
    setBusy(true);
    setError(null);
    try {
      const by = userName() ?? (model.me.kind === 'admin' ? 'admin' : model.me.id);
      const updated = await api<Alert>(`/v1/alerts/${encodeURIComponent(alert.id)}/${action}`, { method: 'POST', body: { by, ...(note.trim() && { note: note.trim() }) } });
      model.applyAlert(updated);
      setNote('');
      notifications.reload();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const id = `alert-${alert.id}`;
  const canAck = alert.state === 'open' && model.can('alerts:ack');
  const canResolve = alert.state !== 'resolved' && model.can('admin');
  return (
    <article class={`alert sev-border-${alert.severity} ${focused ? 'focused' : ''}`} id={id} data-alert={alert.id} data-state={alert.state} aria-labelledby={`${id}-title`}>
      <header>
        <SeverityPill severity={alert.severity} />
        <h2 id={`${id}-title`}>{alertLabel(alert.type)}</h2>
        <a href={`#/residents/${encodeURIComponent(alert.residentId)}`}>{model.displayName(alert.residentId)}</a>
        <span class="muted" title={alert.openedAt}>
          {ago(alert.openedAt, now)} ({clock(alert.openedAt)}){alert.occurrences > 1 && ` · ${alert.occurrences} times`}
          {alert.delayMs !== null && alert.delayMs > 120_000 && ` · detected ${Math.round(alert.delayMs / 60_000)} min late`}
        </span>
        <span class={`state state-${alert.state}`}>{alert.state}</span>
      </header>
      {evidenceLines(alert.evidence).length > 0 && (
        <ul class="evidence">
          {evidenceLines(alert.evidence).map((l) => (
            <li key={l}>{l}</li>
          ))}
        </ul>
      )}
      {alert.state !== 'open' && (alert.acknowledgedBy || alert.ackNote) && (
        <p class="muted">
          {alert.state === 'resolved' ? 'Resolved' : 'Acknowledged'}
          {alert.acknowledgedBy && ` by ${alert.acknowledgedBy}`}
          {alert.acknowledgedAt && ` at ${clock(alert.acknowledgedAt)}`}
          {alert.ackNote && `: “${alert.ackNote}”`}
        </p>
      )}
      <Escalation notifications={notifications.data} alert={alert} />
      {(canAck || canResolve) && (
        <form class="actions" onSubmit={(e) => (e.preventDefault(), void act(alert.state === 'open' ? 'ack' : 'resolve'))}>
          <label class="sr-only" for={`${id}-note`}>Note</label>
          <input id={`${id}-note`} placeholder="Note (optional): what you did" value={note} onInput={(e) => setNote(e.currentTarget.value)} maxLength={1000} />
          {canAck && (
            <button type="button" disabled={busy} onClick={() => void act('ack')}>Acknowledge</button>
          )}
          {canResolve && (
            <button type="button" class="secondary" disabled={busy} onClick={() => void act('resolve')}>Resolve</button>
          )}
        </form>
      )}
      {error && <p class="error" role="alert">{error}</p>}
    </article>
  );
}

/** Where the escalation stands: what was sent per step, what is due, what was cancelled. */
function Escalation({ notifications, alert }: { notifications: Notification[] | null; alert: Alert }) {
  if (!notifications) return null;
  if (!notifications.length) return <p class="escalation muted">Nobody was paged for this alert.</p>;
  const steps = new Map<number, Notification[]>();
  for (const n of notifications) steps.set(n.step, [...(steps.get(n.step) ?? []), n]);
  const pending = notifications.filter((n) => n.status === 'queued' || n.status === 'sending');
  const cancelled = notifications.filter((n) => n.status === 'cancelled');
  const summary =
    pending.length > 0
      ? `Escalating: next at ${clock(pending.map((n) => n.nextAttemptAt ?? n.createdAt ?? alert.openedAt).sort()[0])}`
      : cancelled.length > 0
        ? `Escalation stopped: ${cancelled.length} notification${cancelled.length > 1 ? 's' : ''} cancelled`
        : 'Escalation complete';
  return (
    <details class="escalation" open={alert.state === 'open'}>
      <summary data-escalation={pending.length > 0 ? 'running' : 'stopped'}>{summary}</summary>
      <ol>
        {[...steps.entries()]
          .sort(([a], [b]) => a - b)
          .map(([step, ns]) => (
            <li key={step}>
              Step {step + 1}:{' '}
              {ns.map((n, i) => (
                <span key={n.id} class={`notif notif-${n.status}`} title={n.lastError ?? undefined}>
                  {i > 0 && ', '}
                  {CHANNEL_LABELS[n.channel] ?? n.channel} {n.status}
                  {n.status === 'queued' && n.nextAttemptAt && ` for ${clock(n.nextAttemptAt)}`}
                </span>
              ))}
            </li>
          ))}
      </ol>
    </details>
  );
}
