import { useState } from 'preact/hooks';
import { unlockSound } from '../alarm';
import { api } from '../api';
import { saveKey, saveUserName, userName } from '../session';
import type { Whoami } from '../types';

export function Login({ onLogin }: { onLogin: (me: Whoami) => void }) {
  const [key, setKey] = useState('');
  const [remember, setRemember] = useState(false);
  const [name, setName] = useState(userName() ?? '');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    unlockSound();
    setBusy(true);
    setError(null);
    try {
      const me = await api<Whoami>('/v1/whoami', { key: key.trim() });
      saveKey(key.trim(), remember);
      saveUserName(name.trim());
      onLogin(me);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>Vigil</h1>
      <form onSubmit={submit}>
        <label for="key">Your key</label>
        <input id="key" name="key" type="password" autocomplete="current-password" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <p class="hint">The admin key <code>npm start</code> printed, or a staff key an admin made for you (<code>vkey_…</code>).</p>
        <label for="name">Your name</label>
        <input id="name" name="name" autocomplete="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <p class="hint">Recorded with the alerts you acknowledge or resolve.</p>
        <label class="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} /> Stay logged in on this device
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Log in'}</button>
      </form>
    </main>
  );
}
