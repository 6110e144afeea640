// End-to-end suite for the interop server (shared/interop/TESTHUB.md): the official
// @microsoft/signalr client for Node (JSON protocol) against the Rust server, over each transport.
// Expected strings come from the contract and shared/reference/PROTOCOL.md (sections 2, 3, 8, 14).
//
// Besides the contract, the server is expected to have three extra test-hub methods used by the
// ordering cases: `SendNumbers(count)` (sends `Number(i)` for i = 0..count-1 to the caller, then
// returns count), `Record(i)` (appends i to a per-connection list) and `GetRecorded()` (that list).
//
// Run: cd e2e && node --test tests/interop.test.mjs   (needs target/debug/interop-server)
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";

import { ORDERING_COUNT, ORDERING_WAIT_MS, expectNumbersInOrder, expectRecordsInOrder } from "../lib/ordering.mjs";
import { startInterop } from "../lib/server.mjs";
import {
  closedWith,
  invoke,
  nextEvent,
  openHub,
  signalR,
  sleep,
  stopAllHubs,
  stopHub,
  withHubsAt,
} from "../lib/hub.mjs";
import { request } from "../lib/http.mjs";
import { openRawConnection } from "../lib/raw.mjs";

const { HttpTransportType, LogLevel } = signalR;

const TRANSPORTS = [
  { name: "WebSockets", type: HttpTransportType.WebSockets },
  { name: "ServerSentEvents", type: HttpTransportType.ServerSentEvents },
  { name: "LongPolling", type: HttpTransportType.LongPolling },
];

const TEST_TIMEOUT_MS = 30_000;
/** How long "nothing more arrives" waits before looking. */
const QUIET_MS = 300;

const COMPLEX_INPUT = {
  String: "hello world",
  IntArray: [0x1, 0x2, 0xff],
  ByteArray: "AQID",
  Guid: "00010203-0405-0607-0706-050403020100",
  DateTime: "2002-04-01T10:20:15Z",
};
const COMPLEX_FROM_SERVER = {
  String: "hello world",
  IntArray: [1, 2, 3],
  ByteArray: "AQID",
  Guid: "00010203-0405-0607-0706-050403020100",
  DateTime: "2000-01-01T00:00:00Z",
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

/** Runs `body` with an `open(path, options)` for hubs of this file's server. */
const withHubs = (body) => withHubsAt(base, body);

/** A fresh bearer token from `GET /generateJwtToken`. */
async function fetchToken() {
  const response = await request(base, "GET", "/generateJwtToken");
  assert.equal(response.status, 200, `GET /generateJwtToken: ${response.text}`);
  assert.ok(response.text.length > 0, "GET /generateJwtToken returned an empty body");
  return response.text;
}

/** Asserts that opening `path` over `transport` fails, and returns the error. */
async function startFails(path, transport) {
  let connection;
  try {
    connection = await openHub(base, path, { transport, logLevel: LogLevel.None });
  } catch (error) {
    assert.ok(error instanceof Error, `start rejected with a non-Error: ${error}`);
    return error;
  }
  await stopHub(connection);
  assert.fail(`start on ${path} succeeded`);
}

/** Decodes one base64url JWT segment as JSON. */
function jwtPart(segment) {
  return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
}

// ---------------------------------------------------------------------------------------------
// Checks that do not depend on the client's transport.

test("GET /generateJwtToken issues an HS256 JWT for testuser", { timeout: TEST_TIMEOUT_MS }, async () => {
  const token = await fetchToken();
  const parts = token.split(".");
  assert.equal(parts.length, 3, `not a JWT: ${JSON.stringify(token)}`);
  const header = jwtPart(parts[0]);
  const payload = jwtPart(parts[1]);
  assert.equal(header.alg, "HS256");
  assert.equal(payload.nameid, "testuser");
  assert.equal(payload.iss, "SignalRTestServer");
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  assert.ok(audiences.includes("SignalRTests"), `aud = ${JSON.stringify(payload.aud)}`);
});

test("negotiate on /testhub-nowebsockets offers only ServerSentEvents and LongPolling", { timeout: TEST_TIMEOUT_MS }, async () => {
  const response = await request(base, "POST", "/testhub-nowebsockets/negotiate?negotiateVersion=1");
  assert.equal(response.status, 200, response.text);
  const offered = response.json().availableTransports.map((entry) => entry.transport);
  assert.deepEqual(offered, ["ServerSentEvents", "LongPolling"]);
});

// ---------------------------------------------------------------------------------------------
// The same cases over every transport.

for (const { name: transportName, type: transport } of TRANSPORTS) {
  describe(`official client over ${transportName}`, () => {
    const options = (extra = {}) => ({ transport, label: `${transportName} connection`, ...extra });

    it("Echo returns the argument and GetCallerConnectionId is the client's connectionId", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        assert.equal(await invoke(connection, "Echo", "你好，世界！"), "你好，世界！");
        const id = connection.connectionId;
        assert.equal(typeof id, "string");
        assert.ok(id.length > 0, "connectionId is empty");
        assert.equal(await invoke(connection, "GetCallerConnectionId"), id);
      });
    });

    it("ThrowException rejects with the detailed error text", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        await assert.rejects(invoke(connection, "ThrowException", "An error occurred."), {
          message:
            "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred.",
        });
        // The connection survives a failed invocation.
        assert.equal(await invoke(connection, "Echo", "still here"), "still here");
      });
    });

    it("an unknown method rejects with 'Method does not exist.'", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        await assert.rejects(invoke(connection, "NoSuchMethod"), {
          message: "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
        });
      });
    });

    it("InvokeWithString sends Message to the caller", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        // Registered in lower case; the server sends `Message` (client method names are matched
        // case-insensitively by the client).
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

    it("EchoComplexObject and SendComplexObject", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        assert.deepEqual(await invoke(connection, "EchoComplexObject", COMPLEX_INPUT), COMPLEX_INPUT);
        assert.deepEqual(await invoke(connection, "SendComplexObject"), COMPLEX_FROM_SERVER);
      });
    });

    it("GetHeader reads the transport's own request", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        const userAgent = await invoke(connection, "GetHeader", "User-Agent");
        assert.equal(typeof userAgent, "string", `User-Agent = ${JSON.stringify(userAgent)}`);
        const [major, minor] = signalR.VERSION.split(".");
        assert.ok(
          userAgent.startsWith(`Microsoft SignalR/${major}.${minor} (${signalR.VERSION}; `),
          `User-Agent = ${JSON.stringify(userAgent)}`,
        );

        // The Node client adds `X-Requested-With: XMLHttpRequest` only to the requests it makes
        // through its HTTP client (FetchHttpClient: negotiate, polls, POSTs, DELETE). The
        // WebSocket upgrade (ws) and the SSE stream (eventsource) carry only User-Agent, Cookie
        // and Authorization. The hub sees the transport's own request (the first poll on Long
        // Polling), so the header is present on Long Polling only.
        const requestedWith = await invoke(connection, "GetHeader", "X-Requested-With");
        assert.equal(requestedWith, transport === HttpTransportType.LongPolling ? "XMLHttpRequest" : null);

        assert.equal(await invoke(connection, "GetHeader", "No-Such-Header"), null);
      });
    });

    it("cookies set by negotiate reach the hub; the expired one does not", { timeout: TEST_TIMEOUT_MS }, async () => {
      // The Node client keeps a cookie jar (tough-cookie) in FetchHttpClient and sends its
      // cookies on every transport: via fetch-cookie for polls and POSTs, and as an explicit
      // Cookie header on the WebSocket upgrade and the SSE request. On those two the header is
      // built from the jar's cookie objects and reads `testCookie=testValue; Path=/;
      // testCookie2=testValue2; Path=/`, so the server's cookie parsing must tolerate the
      // `Path=/` pairs.
      await withHubs(async (open) => {
        const connection = await open("/testhub", options());
        assert.equal(await invoke(connection, "GetCookie", "testCookie"), "testValue");
        assert.equal(await invoke(connection, "GetCookie", "testCookie2"), "testValue2");
        assert.equal(await invoke(connection, "GetCookie", "expiredCookie"), null);
      });
    });

    it("/authorizedhub refuses negotiate without a token", { timeout: TEST_TIMEOUT_MS }, async () => {
      const error = await startFails("/authorizedhub", transport);
      assert.match(error.message, /Status code '401'/);
      // Bodyless 401 with reason phrase `Unauthorized` (PROTOCOL.md 2.4).
      assert.equal(error.message, "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'");
    });

    it("/authorizedhub accepts a token from /generateJwtToken", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const connection = await open("/authorizedhub", options({ accessTokenFactory: fetchToken }));
        assert.equal(await invoke(connection, "Echo", "x"), "x");
      });
    });

    it("/uncreatable: the client sees a Close with an error", { timeout: TEST_TIMEOUT_MS }, async () => {
      // The server completes the handshake and then sends a Close message with an error
      // (TESTHUB.md, PROTOCOL.md 14.2). Depending on timing the client reports it either as the
      // rejection of start() (Close read while start is still finishing) or through onclose.
      let failure;
      let connection;
      try {
        connection = await openHub(base, "/uncreatable", options({ logLevel: LogLevel.None }));
      } catch (error) {
        failure = error;
      }
      if (connection) {
        try {
          failure = await closedWith(connection);
        } finally {
          await stopHub(connection);
        }
      }
      assert.ok(failure instanceof Error, `expected an Error, got ${failure}`);
      assert.match(failure.message, /^Server returned an error on close: Connection closed with an error\./);
    });

    if (transport === HttpTransportType.WebSockets) {
      it("skipNegotiation connects straight to the WebSocket", { timeout: TEST_TIMEOUT_MS }, async () => {
        await withHubs(async (open) => {
          const connection = await open("/testhub", options({ skipNegotiation: true }));
          assert.equal(await invoke(connection, "Echo", "skipped"), "skipped");
          assert.equal(await invoke(connection, "GetActiveTransportName"), "WebSockets");
        });
      });
    }

    it("negotiate redirect is followed and counted", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const first = await open(`/redirect?baseUrl=${base}`, options());
        const n1 = await invoke(first, "GetNumRedirects");
        assert.ok(Number.isInteger(n1) && n1 > 0, `GetNumRedirects = ${JSON.stringify(n1)}`);
        assert.equal(await invoke(first, "GetActiveTransportName"), transportName);
        const second = await open(`/redirect?baseUrl=${base}`, options());
        const n2 = await invoke(second, "GetNumRedirects");
        assert.ok(Number.isInteger(n2) && n2 > n1, `second GetNumRedirects = ${JSON.stringify(n2)}, first = ${n1}`);
      });
    });

    it("/bad-negotiate fails start with the server's body and status", { timeout: TEST_TIMEOUT_MS }, async () => {
      const error = await startFails("/bad-negotiate", transport);
      assert.match(error.message, /Some response from server/);
      assert.match(error.message, /Status code '400'/);
      assert.equal(error.message, "Failed to complete negotiation with the server: Error: Some response from server: Status code '400'");
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

    if (transport === HttpTransportType.WebSockets) {
      it("/testhub-nowebsockets refuses a WebSockets-only client", { timeout: TEST_TIMEOUT_MS }, async () => {
        const error = await startFails("/testhub-nowebsockets", transport);
        assert.match(error.message, /^Unable to connect to the server with any of the available transports\./);
      });
    } else {
      it("/testhub-nowebsockets works", { timeout: TEST_TIMEOUT_MS }, async () => {
        await withHubs(async (open) => {
          const connection = await open("/testhub-nowebsockets", options());
          assert.equal(await invoke(connection, "Echo", "你好，世界！"), "你好，世界！");
          assert.equal(await invoke(connection, "GetActiveTransportName"), transportName);
        });
      });
    }

    it("raw /echo writes each message back once; stop completes cleanly", { timeout: TEST_TIMEOUT_MS }, async () => {
      const raw = await openRawConnection(`${base}/echo`, transport);
      try {
        await raw.send("hello");
        assert.equal(await raw.nextMessage(), "hello");
        await sleep(QUIET_MS);
        assert.deepEqual(raw.received, ["hello"]);
      } finally {
        await raw.stop();
      }
      // A client-initiated stop is a clean close on every transport (WebSockets: code 1000).
      assert.equal(await raw.closed(), undefined);
    });
  });
}
