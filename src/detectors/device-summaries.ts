/**
 * The per-day summaries of one device that the `warehouse` group consolidates beside the
 * readings: sleep sessions (sleep/) and daily activity (activity/), in event time and `seq`
 * order (reorder.ts), so a duplicate never counts twice and a late reading still adds its
 * steps to its day. State is plain JSON, snapshotted with the group's checkpoint.
 */
import type { Reading } from '../core/reading.js';
import { currentDay, feedActivity, newActivityState, type ActivityState, type DailyActivity } from './activity/daily-activity.js';
import { admit, expire, newReorderState, type ReorderState } from './reorder.js';
import { feedSleep, newSleepState, settleSleep, type SleepSession, type SleepState } from './sleep/sleep-detector.js';

export interface SummaryState {
  v: 1;
  reorder: ReorderState;
  sleep: SleepState;
  activity: ActivityState;
  lastTs: number;
  lastReceivedAt: number;
  /** Sleep was settled on the device's silence (until its next reading). */
  settled: boolean;
}

export interface Summaries {
  sleep: SleepSession[];
  /** Days that ended (final). */
  days: DailyActivity[];
}

export const newSummaryState = (): SummaryState => ({
  v: 1,
  reorder: newReorderState(),
  sleep: newSleepState(),
  activity: newActivityState(),
  lastTs: 0,
  lastReceivedAt: 0,
  settled: false,
});

export const restoreSummaryState = (saved: unknown): SummaryState => ((saved as SummaryState | undefined)?.v === 1 ? (saved as SummaryState) : newSummaryState());

/** After this much silence a sleep session in progress is closed on what arrived (a long gap ends a night). */
export const SLEEP_SILENCE_MS = 2 * 3_600_000;

export function summarizeReading(st: SummaryState, reading: Reading, timezone: string, out: Summaries): void {
  const inOrder: Reading[] = [];
  const admission = admit(st.reorder, reading, inOrder);
  if (admission === 'duplicate') return;
  if (reading.receivedAt > st.lastReceivedAt) st.lastReceivedAt = reading.receivedAt;
  if (admission === 'late') addActivity(st, reading, timezone, out);
  for (const r of inOrder) inOrderReading(st, r, timezone, out);
}

/** Processing-time duties while the group is caught up: gaps given up on, nights ended by silence. Returns whether the state changed. */
export function tickSummaries(st: SummaryState, timezone: string, now: number, out: Summaries): boolean {
  const inOrder: Reading[] = [];
  expire(st.reorder, now, inOrder);
  for (const r of inOrder) inOrderReading(st, r, timezone, out);
  if (st.settled || st.lastTs === 0 || now - st.lastReceivedAt < SLEEP_SILENCE_MS) return inOrder.length > 0;
  st.settled = true;
  out.sleep.push(...settleSleep(st.sleep, st.lastTs + SLEEP_SILENCE_MS, timezone).sessions);
  return true;
}

/** Today's running activity (not final), for a live view. */
export const activitySoFar = (st: SummaryState): DailyActivity | null => currentDay(st.activity);

function inOrderReading(st: SummaryState, reading: Reading, timezone: string, out: Summaries): void {
  st.lastTs = reading.ts;
  st.settled = false;
  out.sleep.push(...feedSleep(st.sleep, reading, timezone).sessions);
  addActivity(st, reading, timezone, out);
}

function addActivity(st: SummaryState, reading: Reading, timezone: string, out: Summaries): void {
  out.days.push(...feedActivity(st.activity, reading, timezone).days);
}
