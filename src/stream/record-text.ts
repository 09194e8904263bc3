/**
 * The readings of a packed stream record (record-packing.ts) as the JSON text they were stored
 * as, without parsing them: for consumers that pass readings on as text (the archive writes one
 * line per reading). Parsing a reading with a 5-s accelerometer burst and serializing it again
 * cost the archive group two thirds of its thread (docs/performance.md); finding where each
 * reading ends is a scan for braces, brackets and quotes.
 *
 * Each text is exactly what ingest's `JSON.stringify(reading)` wrote, so `JSON.stringify` of
 * its parse gives the same text back: a consumer's output does not change with the path taken.
 * A record not in the packed layout (none is written today) falls back to parsing.
 */

export interface RecordReadingTexts {
  deviceId: string;
  residentId: string;
  /** Each reading's JSON text, in record order. */
  readings: string[];
}

const HEAD = '{"deviceId":';
const READINGS_KEY = ',"readings":[';
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

export function recordReadingTexts(data: string): RecordReadingTexts {
  // The ids are validated strings without `,"readings":[`; the first occurrence ends the head.
  const at = data.indexOf(READINGS_KEY);
  if (!data.startsWith(HEAD) || at < 0) return parsed(data);
  const head = JSON.parse(`${data.slice(0, at)}}`) as { deviceId: string; residentId: string };
  const readings: string[] = [];
  let i = at + READINGS_KEY.length;
  if (data.charCodeAt(i) === CLOSE_BRACKET) return { deviceId: head.deviceId, residentId: head.residentId, readings };
  for (;;) {
    if (data.charCodeAt(i) !== OPEN_BRACE) return parsed(data);
    const end = endOfObject(data, i);
    if (end < 0) return parsed(data);
    readings.push(data.slice(i, end));
    const next = data.charCodeAt(end);
    if (next === COMMA) i = end + 1;
    else if (next === CLOSE_BRACKET && end + 2 === data.length && data.charCodeAt(end + 1) === CLOSE_BRACE) break;
    else return parsed(data);
  }
  return { deviceId: head.deviceId, residentId: head.residentId, readings };
}

/** The index just past the object starting at `start`, or -1 if the text ends first. */
function endOfObject(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i + 1) - 1;
      if (i < 0) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The index just past the closing quote of a string whose content starts at `i`, or 0 if none. */
function endOfString(text: string, i: number): number {
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote < 0) return 0;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

function parsed(data: string): RecordReadingTexts {
  const batch = JSON.parse(data) as { deviceId: string; residentId: string; readings: unknown[] };
  return { deviceId: batch.deviceId, residentId: batch.residentId, readings: batch.readings.map((r) => JSON.stringify(r)) };
}
