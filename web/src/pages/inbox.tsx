// The alerts nobody has resolved yet, what needs a nurse first on top; the latest resolved below.
import { useEffect } from 'preact/hooks';
import { api } from '../api';
import { AlertItem } from '../components/alert-item';
import { useLoad, useModel, useNow } from '../hooks';
import { byUrgency, type Model } from '../model';
import type { Alert } from '../types';

export function Inbox({ model, focusId }: { model: Model; focusId?: string }) {
  useModel(model);
  const now = useNow(10_000);
  const unresolved = [...model.alerts.values()].sort(byUrgency);
  const resolved = useLoad(() => api<{ alerts: Alert[] }>('/v1/alerts?state=resolved&limit=10').then((r) => r.alerts), [unresolved.length]);
  // An alert opened from a push notification may be resolved already: show it anyway.
  const focused = useLoad(
    () => (focusId && !model.alerts.has(focusId) ? api<Alert>(`/v1/alerts/${encodeURIComponent(focusId)}`) : Promise.resolve(null)),
    [focusId],
  );
  useEffect(() => {
    if (focusId) document.getElementById(`alert-${focusId}`)?.scrollIntoView({ block: 'center' });
  }, [focusId, model.loaded, focused.data]);

  if (!model.loaded) return <p class="muted">Loading alerts…</p>;
  return (
    <>
      <h1>Alerts</h1>
      {model.error && <p class="error" role="alert">{model.error}</p>}
      {focused.data && focused.data.state === 'resolved' && <AlertItem alert={focused.data} model={model} now={now} focused />}
      <section aria-label="Unresolved alerts">
        {unresolved.length === 0 ? (
          <p class="empty">No open alerts. All is well.</p>
        ) : (
          unresolved.map((a) => <AlertItem key={a.id} alert={a} model={model} now={now} focused={a.id === focusId} />)
        )}
      </section>
      {resolved.data && resolved.data.length > 0 && (
        <section aria-labelledby="resolved-title">
          <h2 id="resolved-title">Recently resolved</h2>
          <ul class="resolved">
            {resolved.data.map((a) => (
              <li key={a.id}>
                <a href={`#/alerts/${encodeURIComponent(a.id)}`}>{a.type}</a> — {model.displayName(a.residentId)}, resolved{' '}
                {a.resolvedAt && new Date(a.resolvedAt).toLocaleString()}
                {a.ackNote && <span class="muted"> · “{a.ackNote}”</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}
