/**
 * MQTT ingest against the local Mosquitto (docs/mqtt.md): readings published at QoS 1 on
 * `<root>/devices/<deviceId>/readings` reach the stream and the warehouse, duplicates are
 * absorbed, messages that can never succeed are acked and counted, and a message is not
 * acknowledged to the broker while the stream cannot make it durable (the broker keeps
 * redelivering it until it can). MQTT readings followed to an alert, the warehouse and the
 * archive on every combination of backends: e2e.test.ts and aws-e2e.test.ts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vigil } from '../src/app.js';
import { partitionOf } from '../src/stream/partitioner.js';
import { decodeRecord } from '../src/stream/types.js';
import { serviceUp } from '../src/testing/services.js';
import { ADMIN_KEY, api, mqttFrontDoor, reading, registerResident, startTestVigil, waitFor } from './helpers.js';

const up = await serviceUp('mosquitto');
const id = Math.random().toString(36).slice(2, 10);

describe.skipIf(!up)('MQTT ingest', () => {
  let vigil: Vigil;
  let mqtt: Awaited<ReturnType<typeof mqttFrontDoor>>;
  const t = Date.now() - 120_000;

  const publish = (deviceId: string, body: unknown) => mqtt.publish(deviceId, body);

  async function count(result: string): Promise<number> {
    const { values } = await vigil.metrics.mqttMessages.get();
    return values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
  }

  async function storedSeqs(deviceId: string): Promise<number[]> {
    const part = partitionOf(deviceId, vigil.stream.partitions);
    const out: number[] = [];
    let after: string | null = null;
    for (;;) {
      const records = await vigil.stream.read(part, after, 100);
      if (!records.length) return out;
      for (const r of records) {
        const batch = decodeRecord(r);
        if (batch.deviceId === deviceId) out.push(...batch.readings.map((x) => x.seq));
      }
      after = records[records.length - 1].sequence;
    }
  }

  beforeAll(async () => {
    mqtt = await mqttFrontDoor();
    vigil = await startTestVigil(mqtt.overrides);
  });
  afterAll(async () => {
    await vigil?.stop();
    await mqtt?.cleanup(...(vigil ? [vigil.config] : []));
  });

  it('takes readings into the stream and the warehouse, absorbing duplicates', async () => {
    const band = await registerResident(vigil.url, `mq-wh-${id}`);
    const readings = Array.from({ length: 6 }, (_, i) => reading(band.deviceId, i, t + i * 5000, { hr: 60 + i }));
    await publish(band.deviceId, { readings });
    await waitFor('stream', async () => (await storedSeqs(band.deviceId)).length === 6);
    // The same batch again, and one of its readings alone: all duplicates.
    await publish(band.deviceId, { readings });
    await publish(band.deviceId, readings[2]);
    await waitFor('duplicates counted', async () => (await count('duplicate')) >= 2);
    expect(await storedSeqs(band.deviceId)).toEqual([0, 1, 2, 3, 4, 5]);

    const rows = await waitFor('warehouse rows', async () => {
      const res = await api(vigil.url, 'GET', `/v1/residents/${band.residentId}/readings?from=${t}&to=${t + 60_000}`, { token: ADMIN_KEY });
      return res.body.readings?.length === 6 && res.body.readings;
    });
    expect(rows.map((r: { seq: number }) => r.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows[3]).toMatchObject({ deviceId: band.deviceId, residentId: band.residentId, hr: 63 });
  });

  it('acks, drops and counts a reading for another device, invalid JSON and an unknown device', async () => {
    const a = await registerResident(vigil.url, `mq-a-${id}`);
    const b = await registerResident(vigil.url, `mq-b-${id}`);
    const before = { wrong: await count('wrong_device'), malformed: await count('malformed'), unknown: await count('unknown_device') };
    await publish(a.deviceId, reading(b.deviceId, 0, t)); // a publishes as b: the topic is the authority
    await publish(a.deviceId, { readings: [reading(a.deviceId, 0, t), reading(b.deviceId, 1, t)] }); // whole message rejected
    await publish(a.deviceId, '{"deviceId": "not json');
    await publish(`mq-nobody-${id}`, reading(`mq-nobody-${id}`, 0, t));
    await publish(a.deviceId, reading(a.deviceId, 7, t));
    await waitFor('a good reading after the bad ones', async () => (await storedSeqs(a.deviceId)).includes(7));
    await waitFor('counters', async () =>
      (await count('wrong_device')) - before.wrong === 2 && (await count('malformed')) - before.malformed === 1 && (await count('unknown_device')) - before.unknown === 1);
    // Acked, so never redelivered: the counters stay put.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await count('wrong_device')) - before.wrong).toBe(2);
    expect((await count('malformed')) - before.malformed).toBe(1);
    expect((await count('unknown_device')) - before.unknown).toBe(1);
    expect(await storedSeqs(a.deviceId)).toEqual([7]);
    expect(await storedSeqs(b.deviceId)).toEqual([]);
    const rejected = await vigil.metrics.readingsRejected.get();
    expect(rejected.values.find((v) => v.labels.reason === 'wrong_device')?.value).toBeGreaterThanOrEqual(3);
  });

  it('withholds the PUBACK while the stream cannot append: the broker redelivers until it can', async () => {
    const band = await registerResident(vigil.url, `mq-lock-${id}`);
    await publish(band.deviceId, reading(band.deviceId, 0, t));
    await waitFor('warm writer', async () => (await storedSeqs(band.deviceId)).length === 1);

    const before = await count('unavailable');
    const locker = new Database(join(vigil.config.dataDir, 'stream.db'));
    locker.pragma('busy_timeout = 0');
    locker.exec('BEGIN EXCLUSIVE');
    try {
      await publish(band.deviceId, reading(band.deviceId, 1, t + 5000));
      // Seen, refused by the stream, not acked, seen again after the reconnect: redelivered.
      await waitFor('redelivery', async () => (await count('unavailable')) - before >= 2, 20_000);
      expect(await storedSeqs(band.deviceId)).toEqual([0]);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    await waitFor('appended once the stream is back', async () => (await storedSeqs(band.deviceId)).includes(1), 20_000);
    expect(await storedSeqs(band.deviceId)).toEqual([0, 1]);
  }, 60_000);

  it('keeps what is published while Vigil is down in its persistent sessions and takes it at restart', async () => {
    const band = await registerResident(vigil.url, `mq-restart-${id}`);
    const dataDir = vigil.config.dataDir;
    await vigil.stop();
    for (let i = 0; i < 5; i++) await publish(band.deviceId, reading(band.deviceId, i, t + i * 5000));
    vigil = await startTestVigil(mqtt.overrides, dataDir);
    await waitFor('readings published while down', async () => (await storedSeqs(band.deviceId)).length === 5, 20_000);
    expect((await storedSeqs(band.deviceId)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4]);
  }, 60_000);
});
