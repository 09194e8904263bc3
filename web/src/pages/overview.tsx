// Every resident as a card, residents with unresolved alerts first, live.
import { useState } from 'preact/hooks';
import { SeverityPill } from '../components/severity';
import { ago, alertLabel, duration, round } from '../format';
import { useModel, useNow } from '../hooks';
import { byUrgency, type Model } from '../model';
import type { Alert, Card } from '../types';

/** A band that has not been heard from for this long is shown as silent. */
const SILENT_MS = 2 * 60_000;

export function Overview({ model }: { model: Model }) {
  useModel(model);
  const now = useNow(10_000);
  const [filter, setFilter] = useState('');
  if (!model.loaded) return <p class="muted">Loading residents…</p>;

  const needle = filter.trim().toLowerCase();
  const cards = model.cards
    .filter((c) => !needle || (c.name ?? c.residentId).toLowerCase().includes(needle))
    .map((c) => ({ card: c, alerts: model.alertsOf(c.residentId) }))
    // Live alerts may have changed the order the server gave.
    .sort((a, b) => {
      const [x, y] = [a.alerts[0], b.alerts[0]];
      if (x && y) return byUrgency(x, y);
      if (x || y) return x ? -1 : 1;
      return (a.card.name ?? a.card.residentId).localeCompare(b.card.name ?? b.card.residentId);
    });

  return (
    <>
      <div class="toolbar">
        <h1>Residents <span class="muted">({model.cards.length})</span></h1>
        <input type="search" aria-label="Find a resident" placeholder="Find a resident" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      {model.error && <p class="error" role="alert">{model.error}</p>}
      {model.cards.length === 0 && !model.error && <p class="muted">No residents yet. An admin adds them with POST /v1/residents (docs/api.md).</p>}
      <ul class="cards">
        {cards.map(({ card, alerts }) => (
          <ResidentCard key={card.residentId} card={card} alerts={alerts} now={now} />
        ))}
      </ul>
    </>
  );
}

function ResidentCard({ card, alerts, now }: { card: Card; alerts: Alert[]; now: number }) {
  const r = card.lastReading;
  const silent = r ? now - Date.parse(r.receivedAt) > SILENT_MS : true;
  const top = alerts[0];
  return (
    <li class={`card ${top ? `has-${top.severity}` : ''}`} data-resident={card.residentId} data-last-ts={r?.ts ?? ''}>
      <a class="card-link" href={`#/residents/${encodeURIComponent(card.residentId)}`}>
        <h2>{card.name ?? card.residentId}</h2>
        {alerts.length > 0 && (
          <ul class="card-alerts">
            {alerts.slice(0, 3).map((a) => (
              <li key={a.id}>
                <SeverityPill severity={a.severity} /> {alertLabel(a.type)}
                {a.state === 'acknowledged' && <span class="muted"> · acknowledged</span>}
              </li>
            ))}
          </ul>
        )}
        <dl class="vitals">
          <div>
            <dt>Heart rate</dt>
            <dd class="hr">{round(r?.hr)} <small>bpm</small></dd>
          </div>
          <div>
            <dt>SpO2</dt>
            <dd class="spo2">{round(r?.spo2)} <small>%</small></dd>
          </div>
          <div>
            <dt>Steps today</dt>
            <dd>{card.stepsToday === null ? '–' : card.stepsToday.toLocaleString()}</dd>
          </div>
          <div>
            <dt>Last night</dt>
            <dd>{card.lastNight ? duration(card.lastNight.totalSleepMin) : '–'}</dd>
          </div>
        </dl>
        <p class={`band ${silent ? 'warn' : ''}`}>
          <span class="last-seen">{r ? `Seen ${ago(r.receivedAt, now)}` : 'No readings yet'}</span>
          {r?.battery !== null && r?.battery !== undefined && <span class={r.battery < 20 ? 'warn' : ''}> · battery {Math.round(r.battery)} %</span>}
          {r?.charging ? <span> · charging</span> : r?.worn === false ? <span class="warn"> · not worn</span> : r?.worn ? <span> · worn</span> : null}
        </p>
      </a>
    </li>
  );
}
