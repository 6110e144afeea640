// End-to-end suite for the interop server (shared/interop/TESTHUB.md) with the MessagePack hub
// protocol: the official @microsoft/signalr client for Node with `MessagePackHubProtocol` of
// @microsoft/signalr-protocol-msgpack against the Rust server.
//
// A subset of tests/interop.test.mjs runs over WebSockets and Long Polling. Server-Sent Events
// carry text only, so the client refuses to use them with a binary protocol: forcing SSE must
// fail to start. Values that JSON spells as strings come back typed here: `byte[]` as
// Uint8Array (MessagePack bin) and DateTime as Date (MessagePack timestamp extension).
//
// The ordering cases use the interop server's extra methods `SendNumbers(count)`, `Record(i)`
// and `GetRecorded()` (see tests/interop.test.mjs).
//
// Run: cd e2e && node --test tests/interop-messagepack.test.mjs   (needs target/debug/interop-server)
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";

import { ORDERING_COUNT, ORDERING_WAIT_MS, expectNumbersInOrder, expectRecordsInOrder } from "../lib/ordering.mjs";
import { startInterop } from "../lib/server.mjs";
import {
  invoke,
  nextEvent,
  openHub,
  signalR,
  stopAllHubs,
  stopHub,
  withHubsAt,
} from "../lib/hub.mjs";
import { request } from "../lib/http.mjs";

const { HttpTransportType, LogLevel } = signalR;

const TRANSPORTS = [
  { name: "WebSockets", type: HttpTransportType.WebSockets },
  { name: "LongPolling", type: HttpTransportType.LongPolling },
];

const TEST_TIMEOUT_MS = 30_000;

const COMPLEX_INPUT = {
  String: "hello world",
  IntArray: [0x1, 0x2, 0xff],
  ByteArray: new Uint8Array([0x68, 0x65, 0x6c, 0x6c, 0x6f]),
  Guid: "00010203-0405-0607-0706-050403020100",
  DateTime: new Date(Date.UTC(2002, 3, 1, 10, 20, 15)),
};
const COMPLEX_FROM_SERVER = {
  String: "hello world",
  IntArray: [1, 2, 3],
  ByteArray: new Uint8Array([1, 2, 3]),
  Guid: "00010203-0405-0607-0706-050403020100",
  DateTime: new Date(Date.UTC(2000, 0, 1, 0, 0, 0)),
};

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

/** Runs `body` with an `open(path, options)` for MessagePack hubs of this file's server. */
const withHubs = (body) => withHubsAt(base, body, { protocol: "messagepack" });

// ---------------------------------------------------------------------------------------------
// Checks that do not depend on the client's transport.

test("negotiate offers Text and Binary on WebSockets and Long Polling, Text only on SSE", { timeout: TEST_TIMEOUT_MS }, async () => {
  const response = await request(base, "POST", "/testhub/negotiate?negotiateVersion=1");
  assert.equal(response.status, 200, response.text);
  const formats = Object.fromEntries(
    response.json().availableTransports.map((entry) => [entry.transport, entry.transferFormats]),
  );
  assert.deepEqual(formats, {
    WebSockets: ["Text", "Binary"],
    ServerSentEvents: ["Text"],
    LongPolling: ["Text", "Binary"],
  });
  // Spelled exactly so in the body (no whitespace), once per transport.
  const count = (needle) => response.text.split(needle).length - 1;
  assert.equal(count('"transferFormats":["Text","Binary"]'), 2, response.text);
  assert.equal(count('"transferFormats":["Text"]'), 1, response.text);
});

test("forcing Server-Sent Events with MessagePack fails to start", { timeout: TEST_TIMEOUT_MS }, async () => {
  // The client negotiates, finds that SSE offers only Text (the other two transports are
  // disabled by the client's own option) and gives up without opening a transport.
  let connection;
  let failure;
  try {
    connection = await openHub(base, "/testhub", {
      protocol: "messagepack",
      transport: HttpTransportType.ServerSentEvents,
      logLevel: LogLevel.None,
    });
  } catch (error) {
    failure = error;
  }
  if (connection) {
    await stopHub(connection);
    assert.fail("start over ServerSentEvents with MessagePack succeeded");
  }
  assert.ok(failure instanceof Error, `expected an Error, got ${failure}`);
  // The transport errors are Error subclasses whose `name` stays "Error" (the class is in
  // `errorType`), so the joined message reads "Error: ..." for each of them.
  assert.equal(
    failure.message,
    "Unable to connect to the server with any of the available transports. " +
      "WebSockets failed: Error: 'WebSockets' is disabled by the client. " +
      "ServerSentEvents failed: Error: 'ServerSentEvents' does not support Binary. " +
      "LongPolling failed: Error: 'LongPolling' is disabled by the client.",
  );
  assert.ok(Array.isArray(failure.innerErrors), "AggregateErrors has innerErrors");
  assert.deepEqual(
    failure.innerErrors.map((entry) => (typeof entry === "string" ? entry : `${entry.errorType ?? "Error"}: ${entry.message}`)),
    [
      "WebSockets failed:",
      "DisabledTransportError: 'WebSockets' is disabled by the client.",
      "ServerSentEvents failed:",
      "Error: 'ServerSentEvents' does not support Binary.",
      "LongPolling failed:",
      "DisabledTransportError: 'LongPolling' is disabled by the client.",
    ],
  );
});

// ---------------------------------------------------------------------------------------------
// The same cases over each binary-capable transport.

for (const { name: transportName, type: transport } of TRANSPORTS) {
  describe(`official client with MessagePack over ${transportName}`, () => {
    const options = (extra = {}) => ({ transport, label: `${transportName} MessagePack connection`, ...extra });

    it("Echo returns a non-ASCII argument", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        assert.equal(await invoke(connection, "Echo", "你好，世界！"), "你好，世界！");
        assert.equal(await invoke(connection, "GetCallerConnectionId"), connection.connectionId);
      });
    });

    it("ThrowException rejects with the detailed error text", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        await assert.rejects(invoke(connection, "ThrowException", "An error occurred."), {
          message:
            "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred.",
        });
        assert.equal(await invoke(connection, "Echo", "still here"), "still here");
      });
    });

    it("InvokeWithString sends Message to the caller", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options({ events: ["message"] }));
        await invoke(connection, "InvokeWithString", "hello");
        assert.deepEqual(await nextEvent(connection, "message"), ["hello"]);
      });
    });

    it("SendCustomObject sends CustomObject with PascalCase keys", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options({ events: ["customObject"] }));
        await invoke(connection, "SendCustomObject", { Name: "test", Value: 42 });
        assert.deepEqual(await nextEvent(connection, "customObject"), [{ Name: "test", Value: 42 }]);
      });
    });

    it("GetActiveTransportName names the transport", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        assert.equal(await invoke(connection, "GetActiveTransportName"), transportName);
      });
    });

    it("EchoComplexObject returns bin as Uint8Array and the timestamp as Date", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const echoed = await invoke(connection, "EchoComplexObject", COMPLEX_INPUT);
        assert.ok(echoed.ByteArray instanceof Uint8Array, `ByteArray = ${echoed.ByteArray}`);
        assert.ok(echoed.DateTime instanceof Date, `DateTime = ${echoed.DateTime}`);
        assert.deepEqual(echoed, COMPLEX_INPUT);
      });
    });

    it("SendComplexObject returns bytes 1,2,3 and 2000-01-01T00:00:00Z", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const sent = await invoke(connection, "SendComplexObject");
        assert.ok(sent.ByteArray instanceof Uint8Array, `ByteArray = ${sent.ByteArray}`);
        assert.ok(sent.DateTime instanceof Date, `DateTime = ${sent.DateTime}`);
        assert.equal(sent.DateTime.toISOString(), "2000-01-01T00:00:00.000Z");
        assert.deepEqual(sent, COMPLEX_FROM_SERVER);
      });
    });

    it(`SendNumbers(${ORDERING_COUNT}) delivers Number(i) in order before its completion`, { timeout: ORDERING_WAIT_MS + 30_000 }, async () => {
      await withHubs(async (open) => {
        await expectNumbersInOrder(await open("/testhub", options({ events: ["number"] })));
      });
    });

    it(`${ORDERING_COUNT} Record sends arrive in order`, { timeout: ORDERING_WAIT_MS + 30_000 }, async () => {
      await withHubs(async (open) => {
        await expectRecordsInOrder(await open("/testhub", options()));
      });
    });
  });
}
