/**
 * Every threshold the detectors use, with its default, its bounds and where it comes from.
 * Defaults apply to everyone; a resident's overrides (stored per resident, see
 * `residentSettingsKey`) replace any of them — a resident with a known resting tachycardia,
 * or a care home that wants a shorter inactivity limit, changes one number, not the code.
 *
 * This table is the single source for validation (admin API), defaults and docs
 * (docs/detection.md lists it).
 */
export interface DetectionSettingSpec {
  default: number;
  min: number;
  max: number;
  doc: string;
}

export const DETECTION_SETTINGS = {
  hrHigh: { default: 131, min: 60, max: 250, doc: 'HR_HIGH opens at or above this pulse (bpm). NEWS2 (RCP 2017): pulse ≥ 131 scores 3.' },
  hrHighClear: { default: 120, min: 50, max: 250, doc: 'HR_HIGH clears at or below this pulse. NEWS2: 111–130 scores 2, ≤ 110 scores ≤ 1; 120 leaves a 10 bpm hysteresis.' },
  hrLow: { default: 40, min: 20, max: 100, doc: 'HR_LOW opens at or below this pulse. NEWS2: pulse ≤ 40 scores 3.' },
  hrLowClear: { default: 46, min: 20, max: 120, doc: 'HR_LOW clears at or above this pulse. NEWS2: 41–50 scores 1.' },
  spo2Low: { default: 91, min: 70, max: 99, doc: 'SPO2_LOW opens at or below this saturation (%). NEWS2 scale 1: ≤ 91 scores 3.' },
  spo2LowClear: { default: 94, min: 70, max: 100, doc: 'SPO2_LOW clears at or above this saturation. NEWS2 scale 1: ≥ 96 scores 0, 94–95 scores 1.' },
  vitalsSustainMs: { default: 30_000, min: 0, max: 3_600_000, doc: 'How long HR/SpO2 must stay beyond a band before the alert opens (and back inside before it clears): one PPG spike is motion artefact, 30 s of it is not.' },
  tempHigh: {
    default: 37.5,
    min: 33,
    max: 42,
    doc: 'TEMP_HIGH opens at or above this wrist skin temperature (°C). Wrist skin runs 1–2 °C below core (DESIGN §4); NEWS2 scores core ≥ 39.1 with 2, so skin ≥ 37.5 means fever.',
  },
  tempHighClear: { default: 37.0, min: 33, max: 42, doc: 'TEMP_HIGH clears at or below this skin temperature.' },
  tempLow: {
    default: 28,
    min: 15,
    max: 34,
    doc: 'TEMP_LOW opens at or below this skin temperature. Distal skin of people at rest in a cool room reaches 30–32 °C; below 28 °C a worn band points at a cold environment (NEWS2: core ≤ 35.0 scores 3).',
  },
  tempLowClear: { default: 29.5, min: 15, max: 36, doc: 'TEMP_LOW clears at or above this skin temperature.' },
  tempSustainMs: { default: 600_000, min: 0, max: 86_400_000, doc: 'Skin temperature changes slowly and follows the room: it must stay beyond a band for 10 min.' },
  hrRiseBpm: {
    default: 30,
    min: 5,
    max: 100,
    doc: 'HR_RISE opens when the pulse at rest stays this far above the personal resting baseline (learned during sleep). A rise of ≥ 30 bpm at rest is beyond normal day-night variation (resting HR ~ +10 bpm awake).',
  },
  hrRiseSustainMs: { default: 900_000, min: 60_000, max: 86_400_000, doc: 'How long the rise over baseline must last (15 min): exertion and stairs are shorter.' },
  inactivityMs: { default: 7_200_000, min: 300_000, max: 86_400_000, doc: 'INACTIVITY: worn, not charging, awake and still for this long during waking hours (issue: default 2 h).' },
  inactivityAfterFallMs: { default: 900_000, min: 60_000, max: 86_400_000, doc: 'The inactivity limit for the 2 h after a fall: a resident lying still then needs someone sooner.' },
  dayStartHour: { default: 7, min: 0, max: 23, doc: 'Waking hours start (local hour): before it, stillness is sleep, not inactivity.' },
  dayEndHour: { default: 22, min: 0, max: 24, doc: 'Waking hours end (local hour).' },
  notWornMs: { default: 900_000, min: 60_000, max: 86_400_000, doc: 'NOT_WORN: worn=false or a flat signal for this long by day (issue: 15 min).' },
  batteryLowPct: { default: 15, min: 1, max: 90, doc: 'BATTERY_LOW at or below this charge (issue: 15 %).' },
  batteryRearmPct: { default: 40, min: 2, max: 100, doc: 'BATTERY_LOW re-arms (clears) once charging or back above this: once per discharge.' },
  offlineMs: { default: 600_000, min: 6_000, max: 86_400_000, doc: 'DEVICE_OFFLINE after this long without a reading, in processing time (issue: 10 min).' },
  geofenceRadiusM: { default: 200, min: 20, max: 100_000, doc: 'Home geofence radius when the resident home location has none (m).' },
  wanderingAwayMs: { default: 1_800_000, min: 0, max: 86_400_000, doc: 'WANDERING by day after this long outside the geofence; at night after wanderingNightMs.' },
  wanderingNightMs: { default: 120_000, min: 0, max: 86_400_000, doc: 'WANDERING at night (outside waking hours) after this long outside: long enough to ignore one GPS jump.' },
  imOkWindowMs: { default: 30_000, min: 0, max: 600_000, doc: 'After a detected fall, normal movement or SOS_CANCEL within this window resolves it as "resident OK" (issue: default 30 s).' },
} as const satisfies Record<string, DetectionSettingSpec>;

export type DetectionSettingKey = keyof typeof DETECTION_SETTINGS;
export type DetectionSettings = { readonly [K in DetectionSettingKey]: number };
export type DetectionOverrides = Partial<Record<DetectionSettingKey, number>>;

export const DEFAULT_DETECTION_SETTINGS: DetectionSettings = Object.fromEntries(
  Object.entries(DETECTION_SETTINGS).map(([k, s]) => [k, s.default]),
) as DetectionSettings;

/** The store setting that holds a resident's overrides, as JSON. */
export const residentSettingsKey = (residentId: string): string => `detection:${residentId}`;

/** JSON schema of an overrides object (admin API body). */
export function overridesSchema(): object {
  const properties: Record<string, object> = {};
  for (const [k, s] of Object.entries(DETECTION_SETTINGS)) properties[k] = { type: 'number', minimum: s.min, maximum: s.max };
  return { type: 'object', properties, additionalProperties: false };
}

/** Defaults, then site-wide config, then the resident's overrides; unknown keys are ignored. */
export function effectiveSettings(base: DetectionSettings, overrides: DetectionOverrides | null | undefined): DetectionSettings {
  if (!overrides) return base;
  const out: Record<string, number> = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (k in DETECTION_SETTINGS && typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out as DetectionSettings;
}

/** The settings as a Markdown table (docs/detection.md carries it; a test keeps them equal). */
export function detectionSettingsTable(): string {
  const rows = Object.entries(DETECTION_SETTINGS).map(([k, s]) => `| \`${k}\` | ${s.default} | ${s.min}–${s.max} | ${s.doc} |`);
  return ['| key | default | range | meaning and source |', '|---|---:|---|---|', ...rows].join('\n');
}
