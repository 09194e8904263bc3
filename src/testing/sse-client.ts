/**
 * A small Server-Sent Events client for tests: an HTTP GET plus a parser of the text/event-stream
 * format (WHATWG HTML §9.2: `field: value` lines, a blank line ends a message, `:` starts a
 * comment). It records every message and comment and can wait for one.
 */

import { request, type IncomingMessage } from 'node:http';

export interface SseMessage {
  /** The `id:` of this message, or null when it had none (the last id is then unchanged). */
  id: string | null;
  event: string;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: Headers;
  /** The body when the answer was not a stream (an error). */
  text: string;
  messages: SseMessage[];
  comments: string[];
  /** The `retry:` value last received. */
  retry: number | null;
  /** The last `id:` received, as a browser's EventSource would send it in Last-Event-ID. */
  lastEventId: string | null;
  /** Resolves with the first message (among all received) that matches; rejects after `timeoutMs`. */
  waitFor(match: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  waitForComment(match: (c: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Incremental parser: feed it text, it calls back per message and comment. */
export class SseParser {
  private buffer = '';
  private id: string | null = null;
  private event = '';
  private data: string[] = [];
  private sawId = false;

  constructor(
    private readonly onMessage: (m: SseMessage) => void,
    private readonly onComment: (c: string) => void = () => {},
    private readonly onRetry: (ms: number) => void = () => {},
  ) {}

  push(text: string): void {
    this.buffer += text;
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0 || this.event !== '') {
        this.onMessage({ id: this.sawId ? this.id : null, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.event = '';
      this.data = [];
      this.sawId = false;
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') {
      this.id = value;
      this.sawId = true;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.onRetry(Number(value));
  }
}

/**
 * GET `url` and parse the stream. Over node:http rather than fetch: closing destroys the socket
 * at once (an aborted fetch can leave the server a spare connection that holds up its close).
 */
export async function connectSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
  req.on('error', () => undefined); // after close()
  const waiters: { match: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void }[] = [];
  const commentWaiters: { match: (c: string) => boolean; resolve: (c: string) => void }[] = [];
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) responseHeaders.set(name, [value].flat().join(', '));
  const conn: SseConnection = {
    status: res.statusCode ?? 0,
    headers: responseHeaders,
    text: '',
    messages: [],
    comments: [],
    retry: null,
    lastEventId: headers['last-event-id'] ?? null,
    waitFor(match, timeoutMs = 20_000) {
      const hit = conn.messages.find(match);
      if (hit) return Promise.resolve(hit);
      return withTimeout(new Promise((resolve) => waiters.push({ match, resolve })), timeoutMs, 'an SSE message');
    },
    waitForComment(match, timeoutMs = 20_000) {
      const hit = conn.comments.find(match);
      if (hit !== undefined) return Promise.resolve(hit);
      return withTimeout(new Promise((resolve) => commentWaiters.push({ match, resolve })), timeoutMs, 'an SSE comment');
    },
    ended: new Promise((resolve) => res.once('close', () => resolve())),
    close: () => req.destroy(),
  };
  res.setEncoding('utf8');
  if (!(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    for await (const chunk of res) conn.text += chunk as string;
    return conn;
  }
  const parser = new SseParser(
    (m) => {
      conn.messages.push(m);
      if (m.id !== null) conn.lastEventId = m.id;
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].match(m)) waiters.splice(i, 1)[0].resolve(m);
      }
    },
    (c) => {
      conn.comments.push(c);
      for (let i = commentWaiters.length - 1; i >= 0; i--) {
        if (commentWaiters[i].match(c)) commentWaiters.splice(i, 1)[0].resolve(c);
      }
    },
    (ms) => (conn.retry = ms),
  );
  res.on('data', (chunk: string) => parser.push(chunk));
  res.on('error', () => undefined);
  return conn;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
