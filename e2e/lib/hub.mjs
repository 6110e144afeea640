// Helpers for driving hub connections of the official JavaScript client in end-to-end tests.
//
// Every connection opened here records the client-method calls it receives into per-name queues
// from the moment it is built (handlers are registered before `start()`), so a test can ask for
// "the next call of X" without racing the server. Every wait is bounded.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export { signalR, MessagePackHubProtocol };

export const DEFAULT_TIMEOUT_MS = 10_000;

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((done) => setTimeout(done, ms));
}

/** Races `promise` against a timer; rejects with a message naming `what` when the timer wins. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Per-connection record of received client-method calls, keyed by lower-cased method name. */
class CallRecorder {
  constructor(label) {
    this.label = label;
    this.queues = new Map(); // name -> array of argument arrays not yet consumed
    this.waiters = new Map(); // name -> array of resolve functions
    this.closeError = undefined;
    // Settles with `{ error }` when the connection's onclose fires.
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  push(name, args) {
    const key = name.toLowerCase();
    const waiting = this.waiters.get(key);
    if (waiting && waiting.length > 0) {
      waiting.shift()(args);
      return;
    }
    if (!this.queues.has(key)) this.queues.set(key, []);
    this.queues.get(key).push(args);
  }

  next(name, timeoutMs) {
    const key = name.toLowerCase();
    const queued = this.queues.get(key);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      if (!this.waiters.has(key)) this.waiters.set(key, []);
      const list = this.waiters.get(key);
      const timer = setTimeout(() => {
        const at = list.indexOf(deliver);
        if (at >= 0) list.splice(at, 1);
        const closed = this.closeError ? ` (connection closed: ${this.closeError})` : "";
        reject(new Error(`${this.label}: no '${name}' call within ${timeoutMs} ms${closed}`));
      }, timeoutMs);
      const deliver = (args) => {
        clearTimeout(timer);
        resolve(args);
      };
      list.push(deliver);
    });
  }

  take(name) {
    const key = name.toLowerCase();
    const queued = this.queues.get(key) ?? [];
    this.queues.set(key, []);
    return queued;
  }

  pending() {
    const out = {};
    for (const [key, list] of this.queues) {
      if (list.length > 0) out[key] = list.slice();
    }
    return out;
  }
}

/**
 * A fresh hub protocol instance of the official client for `name`: "json" (JsonHubProtocol) or
 * "messagepack" (MessagePackHubProtocol of @microsoft/signalr-protocol-msgpack, default options).
 */
export function hubProtocol(name = "json") {
  switch (name) {
    case "json":
      return new signalR.JsonHubProtocol();
    case "messagepack":
      return new MessagePackHubProtocol();
    default:
      throw new Error(`unknown hub protocol ${JSON.stringify(name)} (expected "json" or "messagepack")`);
  }
}

const recorders = new WeakMap();
const live = new Set();

function recorderOf(connection) {
  const recorder = recorders.get(connection);
  if (!recorder) throw new Error("connection was not opened with openHub()");
  return recorder;
}

/**
 * Builds and starts a hub connection (WebSockets unless told otherwise, JSON protocol unless told
 * otherwise, warnings and errors only).
 *
 * - `events`: client-method names to listen for; each is registered with `connection.on(name)`
 *   exactly as spelled, before the connection starts.
 * - `token`: bearer token handed to `accessTokenFactory`.
 * - `accessTokenFactory`: used instead of `token` when given (may be async).
 * - `headers`: extra HTTP headers (e.g. `Cookie`) for negotiate and the WebSocket request.
 * - `transport`: a `signalR.HttpTransportType` (default WebSockets).
 * - `skipNegotiation`: passed to the client (WebSockets only).
 * - `protocol`: "json" (default) or "messagepack" (see `hubProtocol`). The client never selects
 *   Server-Sent Events for MessagePack (SSE carries text only), so forcing SSE with it fails.
 * - `logLevel`: client log level (default Warning; None for cases expected to fail).
 * - `label`: name used in timeout messages.
 */
export async function openHub(
  baseUrl,
  path,
  {
    events = [],
    token,
    accessTokenFactory,
    headers,
    transport = signalR.HttpTransportType.WebSockets,
    skipNegotiation,
    logLevel = signalR.LogLevel.Warning,
    label,
    protocol = "json",
    timeoutMs = DEFAULT_TIMEOUT_MS,
  } = {},
) {
  const options = { transport };
  if (token !== undefined) options.accessTokenFactory = () => token;
  if (accessTokenFactory !== undefined) options.accessTokenFactory = accessTokenFactory;
  if (headers !== undefined) options.headers = headers;
  if (skipNegotiation !== undefined) options.skipNegotiation = skipNegotiation;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(new URL(path, baseUrl).href, options)
    .withHubProtocol(hubProtocol(protocol))
    .configureLogging(logLevel)
    .build();
  const recorder = new CallRecorder(label ?? path);
  recorders.set(connection, recorder);
  for (const name of events) {
    connection.on(name, (...args) => recorder.push(name, args));
  }
  connection.onclose((error) => {
    recorder.closeError = error ? error.message : "closed";
    recorder.resolveClosed({ error });
  });
  try {
    await withTimeout(connection.start(), timeoutMs, `start ${recorder.label}`);
  } catch (error) {
    await stopHub(connection);
    throw error;
  }
  live.add(connection);
  return connection;
}

/** Stops one connection; never waits longer than the bound. */
export async function stopHub(connection, timeoutMs = DEFAULT_TIMEOUT_MS) {
  live.delete(connection);
  try {
    await withTimeout(connection.stop(), timeoutMs, "stop connection");
  } catch {
    // The connection is being torn down anyway; a failed stop must not hide the test's result.
  }
}

/**
 * Runs `body` with an `open(path, options)` that opens hub connections to `base` (`defaults`
 * under each call's options); every connection opened is stopped when `body` settles.
 */
export async function withHubsAt(base, body, defaults = {}) {
  const opened = [];
  const open = async (path, options) => {
    const connection = await openHub(base, path, { ...defaults, ...options });
    opened.push(connection);
    return connection;
  };
  try {
    await body(open);
  } finally {
    await Promise.allSettled(opened.map((connection) => stopHub(connection)));
  }
}

/** Stops every connection opened with `openHub` that is still live. */
export async function stopAllHubs() {
  await Promise.allSettled([...live].map((connection) => stopHub(connection)));
}

/** Resolves with the arguments of the next (not yet consumed) call of client method `name`. */
export function nextEvent(connection, name, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return recorderOf(connection).next(name, timeoutMs);
}

/**
 * Resolves with the error the connection's onclose received (undefined for a clean close) once
 * it fires; rejects after `timeoutMs`. onclose only fires for a connection whose start succeeded.
 */
export async function closedWith(connection, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const recorder = recorderOf(connection);
  const { error } = await withTimeout(recorder.closed, timeoutMs, `onclose of ${recorder.label}`);
  return error;
}

/** Removes and returns all recorded, not yet consumed calls of `name`. */
export function takeEvents(connection, name) {
  return recorderOf(connection).take(name);
}

/** Recorded, not yet consumed calls of every name: `{ lowercasedName: [args, ...] }`. */
export function pendingEvents(connection) {
  return recorderOf(connection).pending();
}

/** `connection.invoke(...)`, bounded. */
export function invoke(connection, method, ...args) {
  return withTimeout(connection.invoke(method, ...args), DEFAULT_TIMEOUT_MS, `invoke ${method}`);
}

/** `connection.send(...)` (no invocation id, no reply), bounded. */
export function send(connection, method, ...args) {
  return withTimeout(connection.send(method, ...args), DEFAULT_TIMEOUT_MS, `send ${method}`);
}
