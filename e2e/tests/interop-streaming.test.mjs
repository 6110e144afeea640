// End-to-end suite for the streaming side of the interop server (shared/interop/TESTHUB.md):
// server-to-client streams (`Stream`, `EmptyStream`, `StreamThrowException`, `InfiniteStream`),
// client-to-server upload streams (`StreamingConcat`) and client results
// (`GET /clientresult/{connectionId}`), driven by the official @microsoft/signalr client for Node.
//
// Every case runs over each transport with the JSON protocol and with MessagePack
// (MessagePackHubProtocol of @microsoft/signalr-protocol-msgpack). Server-Sent Events carry text
// only, so the matrix leaves out MessagePack over SSE (see tests/interop-messagepack.test.mjs for
// the check that the client refuses that combination).
//
// Expected strings come from the contract and shared/reference/PROTOCOL.md sections 8, 9 and 14.
//
// Run: cd e2e && node --test --test-concurrency=1 tests/interop-streaming.test.mjs
//      (needs target/debug/interop-server: cargo build -p interop-server)
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { startInterop } from "../lib/server.mjs";
import {
  DEFAULT_TIMEOUT_MS,
  invoke,
  nextEvent,
  signalR,
  sleep,
  stopAllHubs,
  withHubsAt,
  withTimeout,
} from "../lib/hub.mjs";
import { request } from "../lib/http.mjs";

const { HttpTransportType, LogLevel, Subject } = signalR;

const TRANSPORTS = [
  { name: "WebSockets", type: HttpTransportType.WebSockets },
  { name: "ServerSentEvents", type: HttpTransportType.ServerSentEvents },
  { name: "LongPolling", type: HttpTransportType.LongPolling },
];
const PROTOCOLS = ["json", "messagepack"];

// MessagePack is binary; the client never sends it over Server-Sent Events, so that combination
// is not part of the matrix.
const MATRIX = TRANSPORTS.flatMap((transport) =>
  PROTOCOLS.filter((protocol) => !(protocol === "messagepack" && transport.type === HttpTransportType.ServerSentEvents)).map(
    (protocol) => ({ ...transport, protocol }),
  ),
);

const TEST_TIMEOUT_MS = 30_000;
/** How long "nothing more arrives" waits before looking. */
const QUIET_MS = 300;
/** How many streams run at once on one connection in the concurrency case. */
const CONCURRENT_STREAMS = 50;
/** How many items the large upload carries. */
const UPLOAD_COUNT = 1_000;

let server;
let base;

before(async () => {
  server = await startInterop();
  base = server.url;
});

after(async () => {
  await stopAllHubs();
  if (server) await server.stop();
});

/** Runs `body` with an `open(path, options)` for hubs of this file's server. */
const withHubs = (body) => withHubsAt(base, body);

/**
 * Subscribes to `connection.stream(method, ...args)` and records everything the subscriber sees.
 * Returns `{ items, events, subscription, done }`: `events` lists every callback in order
 * (`["next", item]`, `["complete"]`, `["error", message]`); `done` resolves with the items on
 * completion and rejects with the stream's error, or after DEFAULT_TIMEOUT_MS. Disposing the
 * subscription stops that timer (a disposed stream never settles).
 */
function observeStream(connection, method, ...args) {
  const items = [];
  const events = [];
  let timer;
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
    timer = setTimeout(
      () => reject(new Error(`timed out after ${DEFAULT_TIMEOUT_MS} ms: stream ${method}`)),
      DEFAULT_TIMEOUT_MS,
    );
  });
  // Nobody may wait for `done`; keep a failure of an unobserved stream from being unhandled.
  done.catch(() => {});
  const inner = connection.stream(method, ...args).subscribe({
    next: (item) => {
      items.push(item);
      events.push(["next", item]);
    },
    complete: () => {
      events.push(["complete"]);
      clearTimeout(timer);
      settle.resolve(items);
    },
    error: (error) => {
      events.push(["error", error?.message ?? String(error)]);
      clearTimeout(timer);
      settle.reject(error);
    },
  });
  const subscription = {
    dispose() {
      clearTimeout(timer);
      inner.dispose();
    },
  };
  return { items, events, subscription, done };
}

/** Collects every item of a stream; rejects with its error or after the bound. */
function collectStream(connection, method, ...args) {
  const observed = observeStream(connection, method, ...args);
  return observed.done.finally(() => observed.subscription.dispose());
}

/** `GET /clientresult/{id}`: asserts status 200 and returns the body. */
async function clientResult(connectionId) {
  const response = await request(base, "GET", `/clientresult/${encodeURIComponent(connectionId)}`);
  assert.equal(response.status, 200, `GET /clientresult/${connectionId}: ${response.text}`);
  return response.text;
}

// ---------------------------------------------------------------------------------------------
// Checks that do not depend on a connection.

test("GET /clientresult for an unknown connection names it", { timeout: TEST_TIMEOUT_MS }, async () => {
  const id = `no-such-connection-${randomBytes(6).toString("hex")}`;
  assert.equal(await clientResult(id), `Connection '${id}' does not exist.`);
});

// ---------------------------------------------------------------------------------------------
// The same cases over every transport and protocol.

for (const { name: transportName, type: transport, protocol } of MATRIX) {
  const protocolName = protocol === "json" ? "JSON" : "MessagePack";
  describe(`official client over ${transportName} with ${protocolName}`, () => {
    const options = (extra = {}) => ({ transport, protocol, label: `${transportName} ${protocolName} connection`, ...extra });

    // --- server-to-client streams -------------------------------------------------------------

    it("stream(\"Stream\") yields a, b, c and completes", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const observed = observeStream(connection, "Stream");
        assert.deepEqual(await observed.done, ["a", "b", "c"]);
        // Nothing after the completion.
        await sleep(QUIET_MS);
        assert.deepEqual(observed.events, [["next", "a"], ["next", "b"], ["next", "c"], ["complete"]]);
      });
    });

    it("stream(\"EmptyStream\") completes with no items", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const observed = observeStream(connection, "EmptyStream");
        assert.deepEqual(await observed.done, []);
        await sleep(QUIET_MS);
        assert.deepEqual(observed.events, [["complete"]]);
      });
    });

    it("stream(\"StreamThrowException\") errors with the detailed text", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const observed = observeStream(connection, "StreamThrowException", "An error occurred.");
        await assert.rejects(observed.done, {
          message:
            "An unexpected error occurred invoking 'StreamThrowException' on the server. InvalidOperationException: An error occurred.",
        });
        assert.deepEqual(observed.items, []);
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });

    it("invoke of a streaming method and stream of a plain one are refused", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        for (const name of ["Stream", "EmptyStream"]) {
          await assert.rejects(invoke(connection, name), {
            message: `The client attempted to invoke the streaming '${name}' method with a non-streaming invocation.`,
          });
        }
        await assert.rejects(collectStream(connection, "Echo", "42"), {
          message: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
        });
        // The connection survives all three.
        assert.equal(await invoke(connection, "Echo", "still here"), "still here");
      });
    });

    it("disposing an InfiniteStream subscription cancels it on the server (StreamCanceled)", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options({ events: ["StreamCanceled"] }));
        const observed = observeStream(connection, "InfiniteStream");
        observed.subscription.dispose();
        assert.deepEqual(await nextEvent(connection, "StreamCanceled"), []);
        // The connection still works, and the disposed subscriber hears nothing more.
        assert.equal(await invoke(connection, "Echo", "after cancel"), "after cancel");
        await sleep(QUIET_MS);
        assert.deepEqual(observed.events, []);
      });
    });

    it("no items reach a subscriber after it disposed", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const events = [];
        let subscription;
        const first = new Promise((resolve) => {
          subscription = connection.stream("Stream").subscribe({
            next: (item) => {
              events.push(["next", item]);
              // Dispose on the first item: "b", "c" and the completion must not be delivered.
              subscription.dispose();
              resolve();
            },
            complete: () => events.push(["complete"]),
            error: (error) => events.push(["error", error?.message ?? String(error)]),
          });
        });
        await withTimeout(first, DEFAULT_TIMEOUT_MS, "first item of Stream");
        // The CancelInvocation for a stream that has (or soon has) finished is harmless.
        assert.equal(await invoke(connection, "Echo", "after dispose"), "after dispose");
        await sleep(QUIET_MS);
        assert.deepEqual(events, [["next", "a"]]);
        // A fresh stream on the same connection is whole.
        assert.deepEqual(await collectStream(connection, "Stream"), ["a", "b", "c"]);
      });
    });

    it(`${CONCURRENT_STREAMS} concurrent stream("Stream") each yield a, b, c`, { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const observed = Array.from({ length: CONCURRENT_STREAMS }, () => observeStream(connection, "Stream"));
        const results = await Promise.all(observed.map((entry) => entry.done));
        assert.deepEqual(
          results,
          Array.from({ length: CONCURRENT_STREAMS }, () => ["a", "b", "c"]),
        );
        await sleep(QUIET_MS);
        for (const entry of observed) {
          assert.deepEqual(entry.events, [["next", "a"], ["next", "b"], ["next", "c"], ["complete"]]);
        }
      });
    });

    // --- client-to-server upload streams ------------------------------------------------------

    it("StreamingConcat joins the uploaded strings", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const subject = new Subject();
        const result = invoke(connection, "StreamingConcat", subject);
        subject.next("Hello ");
        subject.next("world!");
        subject.complete();
        assert.equal(await result, "Hello world!");
      });
    });

    it("StreamingConcat with an upload that errors rejects with HubException", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const subject = new Subject();
        const result = invoke(connection, "StreamingConcat", subject);
        subject.next("partial");
        subject.error(new Error("Something bad"));
        await assert.rejects(result, {
          message: "An unexpected error occurred invoking 'StreamingConcat' on the server. HubException: Something bad",
        });
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });

    it(`StreamingConcat receives an upload of ${UPLOAD_COUNT} items whole and in order`, { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const parts = Array.from({ length: UPLOAD_COUNT }, (_, i) => `[${i}]`);
        const subject = new Subject();
        const result = invoke(connection, "StreamingConcat", subject);
        for (const part of parts) subject.next(part);
        subject.complete();
        const joined = await result;
        assert.equal(typeof joined, "string");
        assert.equal(joined.length, parts.join("").length);
        assert.equal(joined, parts.join(""));
      });
    });

    // --- client results -----------------------------------------------------------------------

    it("/clientresult answers with the handler's return value", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const calls = [];
        connection.on("Result", (...args) => {
          calls.push(args);
          return 10;
        });
        assert.equal(await clientResult(connection.connectionId), "10");
        assert.deepEqual(calls, [[]]);
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });

    it("/clientresult answers with the text of the handler's error", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        // The client logs the handler's error at Error level; that is expected here.
        const connection = await open("/testhub", options({ logLevel: LogLevel.None }));
        connection.on("Result", () => {
          throw new Error("from callback");
        });
        assert.equal(await clientResult(connection.connectionId), "Error: from callback");
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });

    it("/clientresult without a handler answers \"Client didn't provide a result.\"", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        // The client warns about the missing handler; that is expected here.
        const connection = await open("/testhub", options({ logLevel: LogLevel.None }));
        assert.equal(await clientResult(connection.connectionId), "Client didn't provide a result.");
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });

    it("/clientresult waits for an async handler", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        let answered = false;
        connection.on("Result", async () => {
          await sleep(QUIET_MS);
          answered = true;
          return 42;
        });
        assert.equal(await clientResult(connection.connectionId), "42");
        assert.equal(answered, true);
        // The connection keeps working while and after the server waited for the result.
        assert.equal(await invoke(connection, "Echo", "after"), "after");
      });
    });
  });
}
