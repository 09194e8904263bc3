import { describe, expect, it } from 'vitest';
import { DeviceStates } from './device-states.js';

const restore = (saved: unknown) => (saved as { n: number } | undefined) ?? { n: 0 };
const keys = (states: DeviceStates<{ n: number }>) => states.changes().put.map(([key]) => key).sort();

describe('DeviceStates', () => {
  it('writes only the devices touched or changed since the last commit', () => {
    const states = new DeviceStates(restore, new Map<string, unknown>([['band-1', { residentId: 'res-1', state: { n: 5 } }], ['band-2', { residentId: 'res-2', state: { n: 7 } }]]));
    expect(keys(states)).toEqual([]);
    states.touch('band-1', 'res-1').state.n++;
    states.markChanged('band-2');
    states.markChanged('band-unknown');
    expect(states.changes().put).toEqual([
      ['band-1', { residentId: 'res-1', state: { n: 6 } }],
      ['band-2', { residentId: 'res-2', state: { n: 7 } }],
    ]);
    states.committed();
    expect(keys(states)).toEqual([]);
    expect(states.get('band-2')).toEqual({ residentId: 'res-2', state: { n: 7 } });
  });

  it('starts a device given to another resident afresh', () => {
    const states = new DeviceStates(restore, new Map<string, unknown>([['band-1', { residentId: 'res-1', state: { n: 5 } }]]));
    expect(states.touch('band-1', 'res-9')).toEqual({ residentId: 'res-9', state: { n: 0 } });
    expect(states.changes().put).toEqual([['band-1', { residentId: 'res-9', state: { n: 0 } }]]);
  });

  it('restores a whole-partition snapshot of before and writes all its devices at the next commit; entries win over it', () => {
    const legacy = { devices: { 'band-1': { residentId: 'res-1', state: { n: 1 } }, 'band-2': { residentId: 'res-2', state: { n: 2 } }, broken: { state: {} } } };
    const states = new DeviceStates(restore, new Map<string, unknown>([['band-2', { residentId: 'res-2', state: { n: 20 } }]]), legacy);
    expect(keys(states)).toEqual(['band-1', 'band-2']);
    expect(states.get('band-2')!.state).toEqual({ n: 20 });
    expect(states.get('broken')).toBeUndefined();
  });
});
