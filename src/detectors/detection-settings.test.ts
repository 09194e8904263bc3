import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DETECTION_SETTINGS, DETECTION_SETTINGS, detectionSettingsTable, effectiveSettings } from './detection-settings.js';

describe('detection settings', () => {
  it('keeps every default within its own bounds, and each clearing margin on the safe side', () => {
    for (const [k, s] of Object.entries(DETECTION_SETTINGS)) expect(s.default >= s.min && s.default <= s.max, k).toBe(true);
    const d = DEFAULT_DETECTION_SETTINGS;
    expect(d.hrHighClear).toBeLessThan(d.hrHigh);
    expect(d.hrLowClear).toBeGreaterThan(d.hrLow);
    expect(d.spo2LowClear).toBeGreaterThan(d.spo2Low);
    expect(d.tempHighClear).toBeLessThan(d.tempHigh);
    expect(d.tempLowClear).toBeGreaterThan(d.tempLow);
  });

  it('layers a resident’s overrides over the site settings, ignoring unknown keys', () => {
    const s = effectiveSettings(DEFAULT_DETECTION_SETTINGS, { hrHigh: 115, bogus: 1 } as never);
    expect(s.hrHigh).toBe(115);
    expect(s.hrLow).toBe(40);
    expect('bogus' in s).toBe(false);
  });

  it('is documented in docs/detection.md exactly as defined', () => {
    expect(readFileSync(new URL('../../docs/detection.md', import.meta.url), 'utf8')).toContain(detectionSettingsTable());
  });
});
