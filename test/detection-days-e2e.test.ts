/**
 * Every condition detector end to end over HTTP: simulated residents' days with one scenario
 * each (a sedentary afternoon, a band taken off, a draining battery, a fever, a walk away from
 * home) posted as a phone would, and the alerts read back through the API; then the bands fall
 * silent and DEVICE_OFFLINE follows on processing time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { generateReadings, simulatedResidents } from '../src/simulator/offline.js';
import type { ScenarioName } from '../src/simulator/resident-model.js';
import { ADMIN_KEY, api, startTestVigil, waitFor } from './helpers.js';

const MONDAY = Date.parse('2024-06-10T00:00:00+02:00');

/** Scenario, when it starts on day 1 (local), the window of readings posted around it (hours from its start), and the alert it must raise. */
const CASES: { scenario: ScenarioName; at: string; window: [number, number]; expect: string }[] = [
  { scenario: 'SEDENTARY', at: '13:00', window: [-0.25, 3.25], expect: 'INACTIVITY' },
  { scenario: 'NOT_WORN', at: '11:00', window: [-0.25, 0.75], expect: 'NOT_WORN' },
  { scenario: 'LOW_BATTERY', at: '09:00', window: [0, 2], expect: 'BATTERY_LOW' },
  { scenario: 'FEVER', at: '15:00', window: [-0.25, 1], expect: 'TEMP_HIGH' },
  { scenario: 'WANDERING', at: '14:00', window: [-0.25, 1], expect: 'WANDERING' },
];

describe('condition detectors end to end', () => {
  let vigil: Vigil;
  let base: string;

  beforeAll(async () => {
    vigil = await startTestVigil({ 'alerts.offlineMinutes': 0.2 });
    base = vigil.url;
  });
  afterAll(async () => {
    await vigil?.stop();
  });

  it('raises each scenario’s alert from readings posted over HTTP, then DEVICE_OFFLINE when the bands fall silent', { timeout: 240_000 }, async () => {
    const residents = simulatedResidents(CASES.length, { startTs: MONDAY, accHz: 20, deviceIdPrefix: 'days-' });
    const registered: { residentId: string; token: string }[] = [];
    for (const [i, c] of CASES.entries()) {
      const { deviceId, homeLocation, timezone, model } = residents[i];
      const res = await api(base, 'POST', '/v1/residents', { token: ADMIN_KEY, body: { name: `Resident ${i}`, timezone, homeLocation } });
      const dev = await api(base, 'POST', '/v1/devices', { token: ADMIN_KEY, body: { deviceId, residentId: res.body.id } });
      registered.push({ residentId: res.body.id, token: dev.body.token });
      const start = model.scheduleScenario(c.scenario, { day: 1, at: c.at });
      const readings = [...generateReadings(model, start + c.window[0] * 3_600_000, start + c.window[1] * 3_600_000)];
      for (let k = 0; k < readings.length; k += 500) {
        const post = await api(base, 'POST', '/v1/readings', { token: dev.body.token, body: { readings: readings.slice(k, k + 500) } });
        expect(post.status, JSON.stringify(post.body)).toBe(202);
        expect(post.body.accepted).toBe(Math.min(500, readings.length - k));
      }
    }
    const typesOf = async (residentId: string) => ((await api(base, 'GET', `/v1/alerts?residentId=${residentId}`, { token: ADMIN_KEY })).body.alerts as { type: string }[]).map((a) => a.type);
    for (const [i, c] of CASES.entries()) {
      const types = await waitFor(`${c.expect} for ${c.scenario}`, async () => {
        const t = await typesOf(registered[i].residentId);
        return t.includes(c.expect) && t;
      }, 60_000);
      expect(types.filter((t) => t !== 'DEVICE_OFFLINE'), c.scenario).toEqual([c.expect]);
    }
    // Silent since the last post: after 12 s of processing time, every band is offline.
    await waitFor('DEVICE_OFFLINE', async () => (await typesOf(registered[0].residentId)).includes('DEVICE_OFFLINE'), 60_000, 500);
  });
});
