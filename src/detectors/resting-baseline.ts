/**
 * A personal resting heart rate, learned from sleep (DESIGN §4: personal baselines cut false
 * alarms). Each night's resting rate is the median of the mean pulse of its epochs scored
 * asleep (sleep/sleep-detector.ts); the baseline is the median of the last 14 nights, once 3
 * nights are known. Medians, because a restless night or a night on beta-blockers moves a
 * mean too far.
 *
 * Nights are told apart by the local "night" date of the sleep epochs (noon to noon); the
 * histogram keeps a night in ~100 integers whatever its length.
 */
export interface BaselineState {
  /** Local night (day number, noon-to-noon) being collected, and its pulse histogram. */
  night: number | null;
  histogram: number[];
  /** Resting rates of past nights, newest last. */
  nights: number[];
}

const HR_MIN = 30;
const HR_MAX = 130;
const MAX_NIGHTS = 14;
const MIN_NIGHTS = 3;
/** A night with fewer sleeping epochs (minutes) than this says little about rest. */
const MIN_EPOCHS = 120;

export const newBaselineState = (): BaselineState => ({ night: null, histogram: [], nights: [] });

/** Adds one sleeping epoch's mean pulse, `night` being its noon-to-noon local night number. */
export function addSleepingPulse(st: BaselineState, night: number, hrMean: number): void {
  if (st.night !== night) {
    closeNight(st);
    st.night = night;
    st.histogram = new Array(HR_MAX - HR_MIN + 1).fill(0);
  }
  const bin = Math.round(Math.min(HR_MAX, Math.max(HR_MIN, hrMean))) - HR_MIN;
  st.histogram[bin]++;
}

function closeNight(st: BaselineState): void {
  const total = st.histogram.reduce((a, b) => a + b, 0);
  if (total >= MIN_EPOCHS) {
    let seen = 0;
    for (let i = 0; i < st.histogram.length; i++) {
      seen += st.histogram[i];
      if (seen * 2 >= total) {
        st.nights.push(HR_MIN + i);
        break;
      }
    }
    if (st.nights.length > MAX_NIGHTS) st.nights.shift();
  }
  st.histogram = [];
  st.night = null;
}

/** The resting rate to compare against, or null while fewer than 3 nights are known. */
export function restingHr(st: BaselineState): number | null {
  if (st.nights.length < MIN_NIGHTS) return null;
  const sorted = st.nights.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
