/**
 * The scripted part of the demo: three different alerts within the first minute. Vitals
 * alerts open after ~30 s of sustained abnormal readings, so the scenarios start early.
 */
import type { Fleet } from './fleet.js';
import type { ScenarioName } from './resident-model.js';

const DEMO_SCRIPT: { afterMs: number; deviceIndex: number; scenario: ScenarioName }[] = [
  { afterMs: 15_000, deviceIndex: 0, scenario: 'SOS' },
  { afterMs: 20_000, deviceIndex: 1, scenario: 'TACHYCARDIA' },
  { afterMs: 25_000, deviceIndex: 2, scenario: 'HYPOXIA' },
];

/** Schedules the demo on a started fleet (devices it lacks are skipped); returns a cancel function. */
export function scheduleDemoScenarios(fleet: Fleet): () => void {
  const timers = DEMO_SCRIPT.filter((s) => s.deviceIndex < fleet.size).map((s) => {
    const t = setTimeout(() => fleet.inject(s.deviceIndex, s.scenario), s.afterMs);
    t.unref(); // the demo must never be what keeps a process alive
    return t;
  });
  return () => timers.forEach((t) => clearTimeout(t));
}
