// Cross-checks the hand-written MessagePack hub protocol vectors of the Rust implementation
// (crates/signalr-protocol/src/messagepack/vectors.json) against the official JavaScript
// implementation, `MessagePackHubProtocol` of @microsoft/signalr-protocol-msgpack. No server is
// involved.
//
// Each vector has `name`, `direction` ("client": only a client sends it, "server": only a server
// sends it, "both"), `hex` (the framed message: varint length prefix + MessagePack array) and
// `message` (the same message as the JSON hub protocol would spell it).
//
// - Vectors a client may send (client, both): `writeMessage(message)` must produce exactly `hex`.
// - Vectors a server sends (server, both): `parseMessages(bytes)` must give exactly one message,
//   equal to `message` once the fields the JS parser always fills in are normalised away (see
//   `normaliseParsed`).
// - Where the JS client legitimately writes another layout than a vector, a separate case pins
//   the bytes it does write and explains every byte that differs.
//
// Run: cd e2e && node --test tests/messagepack-vectors.test.mjs
import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { MessageType, NullLogger } from "@microsoft/signalr";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VECTORS_PATH = join(repoRoot, "crates", "signalr-protocol", "src", "messagepack", "vectors.json");
const VECTORS = JSON.parse(readFileSync(VECTORS_PATH, "utf8"));

const DIRECTIONS = new Set(["client", "server", "both"]);
const clientSends = (vector) => vector.direction === "client" || vector.direction === "both";
const serverSends = (vector) => vector.direction === "server" || vector.direction === "both";

/** Lower-case hex of an ArrayBuffer or typed array. */
function hexOf(data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(bytes).toString("hex");
}

/** A standalone ArrayBuffer holding the bytes of `hex` (parseMessages accepts only ArrayBuffer). */
function arrayBufferOf(hex) {
  const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
  return bytes.buffer;
}

/**
 * The message object the JS client would hand to `writeMessage` for a vector's `message`: the
 * same fields, with arguments and items as plain JS values (a deep copy, so the writer cannot
 * alter the vector).
 */
function jsMessageOf(message) {
  return structuredClone(message);
}

/**
 * Brings a message returned by the JS parser into the vectors' JSON shape. Every rule is a field
 * the JS parser sets whatever the bytes say, or the MessagePack spelling of "absent":
 * - a key whose value is `undefined` is dropped (Completion always has `error` and `result`
 *   keys, one of them or both undefined; Close has `allowReconnect: undefined` when the array
 *   has two elements);
 * - `headers: {}` is dropped (the JS parser always returns the headers map; the vectors omit an
 *   empty one);
 * - on an Invocation, `streamIds` is dropped: the JS parser never reads the sixth element and
 *   always reports `streamIds: []` (the caller checks that and compares the vector's own
 *   streamIds separately);
 * - on a Close, `error: null` (nil = no error) and `allowReconnect: false` (the default, which the
 *   JSON protocol leaves out) are dropped.
 */
function normaliseParsed(message) {
  const out = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined) continue;
    if (key === "headers" && value !== null && typeof value === "object" && Object.keys(value).length === 0) continue;
    if (key === "streamIds" && message.type === MessageType.Invocation) continue;
    if (message.type === MessageType.Close && key === "error" && value === null) continue;
    if (message.type === MessageType.Close && key === "allowReconnect" && value === false) continue;
    out[key] = value;
  }
  return out;
}

/** The vector's message without the keys `normaliseParsed` cannot compare (Invocation streamIds). */
function comparableVectorMessage(message) {
  const out = { ...message };
  if (message.type === MessageType.Invocation) delete out.streamIds;
  return out;
}

function vectorNamed(name) {
  const vector = VECTORS.find((entry) => entry.name === name);
  assert.ok(vector, `vectors.json has no vector named ${name}`);
  return vector;
}

test("vectors.json is well formed", () => {
  assert.ok(Array.isArray(VECTORS) && VECTORS.length > 0, "no vectors");
  const names = new Set();
  for (const vector of VECTORS) {
    assert.equal(typeof vector.name, "string");
    assert.ok(!names.has(vector.name), `duplicate vector name ${vector.name}`);
    names.add(vector.name);
    assert.ok(DIRECTIONS.has(vector.direction), `${vector.name}: direction ${vector.direction}`);
    assert.match(vector.hex, /^(?:[0-9a-f]{2})+$/, `${vector.name}: hex`);
    assert.equal(typeof vector.message?.type, "number", `${vector.name}: message.type`);
    // The prefix is a varint; every vector here is shorter than 128 bytes, so it is one byte.
    const bytes = Buffer.from(vector.hex, "hex");
    assert.ok(bytes[0] < 0x80, `${vector.name}: multi-byte length prefix`);
    assert.equal(bytes[0], bytes.length - 1, `${vector.name}: length prefix ${bytes[0]} for a ${bytes.length - 1}-byte body`);
  }
  // Every hub message type has at least one vector.
  const types = new Set(VECTORS.map((vector) => vector.message.type));
  for (const type of [1, 2, 3, 4, 5, 6, 7, 8, 9]) assert.ok(types.has(type), `no vector of message type ${type}`);
});

test("the JS protocol is the one the vectors are for", () => {
  const protocol = new MessagePackHubProtocol();
  assert.equal(protocol.name, "messagepack");
  // The client announces version 1 in its handshake unless stateful reconnect is on.
  assert.equal(protocol.version, 2);
});

describe("writeMessage of the official JS client reproduces the vectors a client may send", () => {
  for (const vector of VECTORS.filter(clientSends)) {
    it(`${vector.name} (${vector.direction}): ${vector.hex}`, () => {
      const protocol = new MessagePackHubProtocol();
      const written = protocol.writeMessage(jsMessageOf(vector.message));
      assert.ok(written instanceof ArrayBuffer, "writeMessage did not return an ArrayBuffer");
      assert.equal(hexOf(written), vector.hex);
    });
  }
});

describe("parseMessages of the official JS client reads the vectors a server sends", () => {
  for (const vector of VECTORS.filter(serverSends)) {
    it(`${vector.name} (${vector.direction}): ${vector.hex}`, () => {
      const protocol = new MessagePackHubProtocol();
      const parsed = protocol.parseMessages(arrayBufferOf(vector.hex), NullLogger.instance);
      assert.equal(parsed.length, 1, `parsed ${JSON.stringify(parsed)}`);
      const [message] = parsed;
      if (message.type === MessageType.Invocation) {
        // The JS parser ignores element 5 (streamIds): clients never receive upload streams.
        // Whatever the bytes carry, it reports an empty list. See the invocation-headers case
        // below for the vector whose streamIds this drops.
        assert.deepEqual(message.streamIds, []);
      }
      assert.deepEqual(normaliseParsed(message), comparableVectorMessage(vector.message));
    });
  }

  it("all server-sent vectors concatenated parse in order", () => {
    const serverVectors = VECTORS.filter(serverSends);
    const protocol = new MessagePackHubProtocol();
    const parsed = protocol.parseMessages(arrayBufferOf(serverVectors.map((vector) => vector.hex).join("")), NullLogger.instance);
    assert.deepEqual(
      parsed.map(normaliseParsed),
      serverVectors.map((vector) => comparableVectorMessage(vector.message)),
    );
  });
});

// -------------------------------------------------------------------------------------------
// Where the JS side and a vector legitimately differ. Each case pins the exact bytes.

describe("layouts where the official JS client differs from a vector", () => {
  it("invocation-headers (both): the JS parser drops streamIds [\"s\"] and reports []", () => {
    // 0f 96 01 81 a1 61 a1 62 a1 30 a1 54 90 91 a1 73
    //          ^ [1, {"a": "b"}, "0", "T", [], ["s"]]
    // The JS parser builds the Invocation from elements 1..4 only; `91 a1 73` (["s"]) is read
    // by the MessagePack decoder but never looked at. A client has no use for stream ids in a
    // server-to-client invocation, so this is a property of the client, not a vector error;
    // the writer direction of the same vector is checked byte for byte above.
    const vector = vectorNamed("invocation-headers");
    const [message] = new MessagePackHubProtocol().parseMessages(arrayBufferOf(vector.hex), NullLogger.instance);
    assert.deepEqual(vector.message.streamIds, ["s"]);
    assert.deepEqual(message.streamIds, []);
    assert.deepEqual(message.headers, { a: "b" });
  });

  it("invocation-server (server) written by JS: 5 elements, no trailing empty streamIds (10950180c0a74d65737361676591a26869)", () => {
    // Vector:   11 96 01 80 c0 a7 "Message" 91 a2 "hi" 90   (6 elements, streamIds [] last)
    // JS writes 10 95 01 80 c0 a7 "Message" 91 a2 "hi"      (5 elements)
    // Differences: length prefix 0x11 -> 0x10 (one byte less); array header fixarray 6 (0x96)
    // -> fixarray 5 (0x95); the trailing 0x90 (empty streamIds array) is absent because the
    // message has no `streamIds` key and `_writeInvocation` writes the sixth element only when
    // `streamIds` is set. The server-side layout (always six elements) is what .NET's
    // MessagePackHubProtocolWorker writes too; the JS parser accepts both (previous section).
    const vector = vectorNamed("invocation-server");
    assert.equal(vector.hex, "11960180c0a74d65737361676591a2686990");
    const written = new MessagePackHubProtocol().writeMessage(jsMessageOf(vector.message));
    assert.equal(hexOf(written), "10950180c0a74d65737361676591a26869");
    assert.equal(hexOf(written), `10${vector.hex.slice(2, 4).replace("96", "95")}${vector.hex.slice(4, -2)}`);
  });

  it("stream-invocation as HubConnection.stream builds it (no streamIds key): 5 elements (0d950480a131a653747265616d90)", () => {
    // Vector:   0e 96 04 80 a1 31 a6 "Stream" 90 90   ([4, {}, "1", "Stream", [], []])
    // JS sends  0d 95 04 80 a1 31 a6 "Stream" 90      ([4, {}, "1", "Stream", []])
    // The vector's message carries `streamIds: []`, and for that object the writer produces
    // the vector's bytes (first section). HubConnection.stream() without upload streams,
    // however, builds the StreamInvocation with no `streamIds` key at all, so what the real
    // client puts on the wire is the five-element form: length 0x0e -> 0x0d, fixarray 6 (0x96)
    // -> 5 (0x95), and no trailing 0x90. A server must accept both.
    const vector = vectorNamed("stream-invocation");
    const { streamIds, ...asHubConnectionBuildsIt } = jsMessageOf(vector.message);
    assert.deepEqual(streamIds, []);
    const written = new MessagePackHubProtocol().writeMessage(asHubConnectionBuildsIt);
    assert.equal(hexOf(written), "0d950480a131a653747265616d90");
  });

  for (const name of ["close", "close-error"]) {
    it(`${name} (server) written by JS: always [7, nil] (039207c0)`, () => {
      // close:       04 93 07 c0 c2   ([7, nil, false])
      // close-error: 05 93 07 a1 78 c3 ([7, "x", true])
      // JS writes    03 92 07 c0       ([7, nil])
      // `_writeClose` ignores the message: it always writes a two-element array with a nil
      // error (fixarray 2 = 0x92, nil = 0xc0), so the error text ("x" = a1 78) and the
      // allowReconnect flag (false 0xc2 / true 0xc3) are never written, and the prefix is 3.
      // That is the vector close-js. Clients only send Close to end the connection cleanly.
      const vector = vectorNamed(name);
      const written = new MessagePackHubProtocol().writeMessage(jsMessageOf(vector.message));
      assert.equal(hexOf(written), "039207c0");
      assert.equal(hexOf(written), vectorNamed("close-js").hex);
    });
  }

  it("close-js (client) read back by JS: error null, no allowReconnect", () => {
    // 03 92 07 c0: two elements, so the JS parser sets allowReconnect to undefined; nil -> null.
    const [message] = new MessagePackHubProtocol().parseMessages(arrayBufferOf(vectorNamed("close-js").hex), NullLogger.instance);
    assert.deepEqual(message, { type: MessageType.Close, error: null, allowReconnect: undefined });
  });

  for (const name of ["stream-invocation", "cancel"]) {
    it(`${name} (client) is a type the JS parser ignores (no message, no error)`, () => {
      // Message types 4 (StreamInvocation) and 5 (CancelInvocation) only go from client to
      // server; the JS parser logs "Unknown message type" and skips them.
      const parsed = new MessagePackHubProtocol().parseMessages(arrayBufferOf(vectorNamed(name).hex), NullLogger.instance);
      assert.deepEqual(parsed, []);
    });
  }
});
