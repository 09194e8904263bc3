// The key the user logged in with. Session storage by default (gone when the tab closes);
// local storage only when the user asks to stay logged in on this device.

const NAME = 'vigil.key';

export function savedKey(): string | null {
  return sessionStorage.getItem(NAME) ?? localStorage.getItem(NAME);
}

export function saveKey(key: string, remember: boolean): void {
  forgetKey();
  (remember ? localStorage : sessionStorage).setItem(NAME, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(NAME);
  localStorage.removeItem(NAME);
}

/**
 * A key handed over in the address (`/#key=…`, what `npm start` prints): taken once, then
 * removed from the address bar and the history so it is not left on screen. The fragment never
 * reaches a server.
 */
export function takeKeyFromAddress(): string | null {
  const m = /^#key=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search + '#/');
  return decodeURIComponent(m[1]);
}

/** Who acknowledges, as typed at login: recorded as `by` on the alert. */
export const userName = (): string | null => localStorage.getItem('vigil.user');
export const saveUserName = (name: string): void => (name ? localStorage.setItem('vigil.user', name) : localStorage.removeItem('vigil.user'));
