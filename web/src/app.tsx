// Login, then the shell: header with navigation, the live status and the page of the route.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { playAlarm, setTitle, unlockSound } from './alarm';
import { api, whenUnauthorized } from './api';
import { alertLabel } from './format';
import { useModel, useRoute } from './hooks';
import { Model } from './model';
import { Inbox } from './pages/inbox';
import { Login } from './pages/login';
import { Overview } from './pages/overview';
import { ResidentPage } from './pages/resident';
import { forgetKey, savedKey, saveKey, takeKeyFromAddress } from './session';
import type { Whoami } from './types';

export function App() {
  const [me, setMe] = useState<Whoami | null>(null);
  const [checking, setChecking] = useState(true);

  useEffect(() => {
    whenUnauthorized(() => {
      forgetKey();
      setMe(null);
    });
    const handed = takeKeyFromAddress();
    if (handed) saveKey(handed, false);
    if (!savedKey()) return setChecking(false);
    api<Whoami>('/v1/whoami')
      .then(setMe, () => forgetKey())
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="splash">Vigil…</p>;
  if (!me) return <Login onLogin={setMe} />;
  return (
    <Shell
      me={me}
      onLogout={() => {
        forgetKey();
        setMe(null);
      }}
    />
  );
}

function Shell({ me, onLogout }: { me: Whoami; onLogout: () => void }) {
  const model = useMemo(() => new Model(me), [me]);
  useModel(model);
  const route = useRoute();
  const [announcement, setAnnouncement] = useState('');

  useEffect(() => {
    model.start((alert) => {
      playAlarm();
      setAnnouncement(`New critical alert: ${alertLabel(alert.type)}, ${model.displayName(alert.residentId)}`);
    });
    // Any click unlocks sound for the next alarm (browsers refuse sound before a gesture).
    addEventListener('pointerdown', unlockSound, { once: true });
    return () => model.stop();
  }, [model]);

  const onInbox = route[0] === 'alerts';
  useEffect(() => {
    const seen = () => onInbox && document.visibilityState === 'visible' && model.markCriticalSeen();
    seen();
    document.addEventListener('visibilitychange', seen);
    return () => document.removeEventListener('visibilitychange', seen);
  }, [onInbox, model, model.version]);
  setTitle(model.unseenCritical.length, model.unseenCritical[0] && alertLabel(model.unseenCritical[0].type));

  const open = [...model.alerts.values()].filter((a) => a.state === 'open').length;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="#/">Vigil</a>
        <nav aria-label="Main">
          <a href="#/" aria-current={route.length === 0 ? 'page' : undefined}>Residents</a>
          {model.can('alerts:read') && (
            <a href="#/alerts" aria-current={onInbox ? 'page' : undefined}>
              Alerts{open > 0 && <span class="count" aria-label={`${open} open`}>{open}</span>}
            </a>
          )}
        </nav>
        <span class={`live live-${model.live}`} role="status" title="Live updates">
          {model.live === 'live' ? 'Live' : model.live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
        <span class="who">{me.kind === 'admin' ? 'Admin' : `Key ${me.id}`}</span>
        <button type="button" class="link" onClick={onLogout}>Log out</button>
      </header>
      <div class="sr-only" aria-live="assertive">{announcement}</div>
      {model.unseenCritical.length > 0 && !onInbox && (
        <div role="alert">
          <a class="banner critical" href="#/alerts">
            ⚠ {model.unseenCritical.length} new critical alert{model.unseenCritical.length > 1 ? 's' : ''}: {alertLabel(model.unseenCritical[0].type)} —{' '}
            {model.displayName(model.unseenCritical[0].residentId)}. Open the inbox.
          </a>
        </div>
      )}
      <main id="main" tabIndex={-1}>
        {route[0] === 'alerts' ? (
          <Inbox model={model} focusId={route[1]} />
        ) : route[0] === 'residents' && route[1] ? (
          <ResidentPage model={model} residentId={route[1]} />
        ) : (
          <Overview model={model} />
        )}
      </main>
    </>
  );
}
