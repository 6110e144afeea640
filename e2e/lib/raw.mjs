// A raw (no hub protocol) connection of the official JavaScript client, for endpoints such as the
// interop server's `/echo`. Every wait is bounded.
//
// `HttpConnection` is not exported from the package's entry point. Its ESM build
// (dist/esm/HttpConnection.js) cannot be loaded by Node: the package has no "type": "module" and
// the build imports its siblings without file extensions ("./DefaultHttpClient"), which Node's
// ESM resolver refuses. The CommonJS build is the same class the package's main entry
// (dist/cjs/index.js) uses, so it is imported from there.
import { HttpConnection } from "@microsoft/signalr/dist/cjs/HttpConnection.js";
import { DEFAULT_TIMEOUT_MS, signalR, withTimeout } from "./hub.mjs";

/**
 * Starts an `HttpConnection` to `url` over `transport` with the Text transfer format.
 * Resolves with `{ connection, received, nextMessage(ms), closed(ms), send(data), stop() }`:
 * `received` lists every message given to `onreceive` (consumed or not), `nextMessage` resolves
 * with the next not yet consumed one, `closed` with the error onclose received (undefined when
 * clean).
 */
export async function openRawConnection(url, transport, { logLevel = signalR.LogLevel.Warning, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const connection = new HttpConnection(url, { transport, logger: logLevel });
  const received = [];
  const unread = [];
  const waiting = [];
  let resolveClosed;
  const closedPromise = new Promise((resolve) => {
    resolveClosed = resolve;
  });
  connection.onreceive = (data) => {
    received.push(data);
    if (waiting.length > 0) waiting.shift()(data);
    else unread.push(data);
  };
  connection.onclose = (error) => resolveClosed({ error });

  const handle = {
    connection,
    received,
    nextMessage(ms = timeoutMs) {
      if (unread.length > 0) return Promise.resolve(unread.shift());
      let deliver;
      const next = new Promise((resolve) => {
        deliver = resolve;
        waiting.push(deliver);
      });
      return withTimeout(next, ms, `raw message on ${url}`).catch((error) => {
        const at = waiting.indexOf(deliver);
        if (at >= 0) waiting.splice(at, 1);
        throw error;
      });
    },
    async closed(ms = timeoutMs) {
      const { error } = await withTimeout(closedPromise, ms, `onclose of raw connection ${url}`);
      return error;
    },
    send(data) {
      return withTimeout(connection.send(data), timeoutMs, `raw send on ${url}`);
    },
    stop() {
      return withTimeout(connection.stop(), timeoutMs, `stop raw connection ${url}`);
    },
  };

  try {
    await withTimeout(connection.start(signalR.TransferFormat.Text), timeoutMs, `start raw connection ${url}`);
  } catch (error) {
    await handle.stop().catch(() => {});
    throw error;
  }
  return handle;
}
