// The notice for a new critical alert: a sound, and the count in the tab's title until someone looks.

let audio: AudioContext | null = null;

/**
 * Browsers only play sound after a user gesture: the login click (or any click) unlocks it.
 * Called from those handlers.
 */
export function unlockSound(): void {
  audio ??= new AudioContext();
  void audio.resume();
}

/** Three short high beeps: audible across a room, unlike anything else on the page. */
export function playAlarm(): void {
  if (!audio || audio.state !== 'running') return;
  const start = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, start + i * 0.3);
    gain.gain.exponentialRampToValueAtTime(0.3, start + i * 0.3 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.3 + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + i * 0.3);
    osc.stop(start + i * 0.3 + 0.22);
  }
}

export function setTitle(unseenCritical: number, firstLabel: string | undefined): void {
  document.title = unseenCritical ? `(${unseenCritical}) ⚠ ${firstLabel ?? 'Critical alert'} — Vigil` : 'Vigil';
}
