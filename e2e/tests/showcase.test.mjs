// End-to-end suite for the showcase app: the official @microsoft/signalr client (Node, each
// transport in turn, JSON protocol) and plain HTTP against the Rust server, checking the wire
// surface described in shared/showcase/CONTRACT.md with exact values.
//
// Run: cd e2e && node --test tests/showcase.test.mjs   (needs target/debug/showcase)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import * as signalR from "@microsoft/signalr";

import { startShowcase } from "../lib/server.mjs";
import {
  invoke,
  nextEvent,
  openHub,
  pendingEvents,
  send,
  sleep,
  stopAllHubs,
  stopHub,
  takeEvents,
  withHubsAt,
  withTimeout,
} from "../lib/hub.mjs";
import { UUID_RE, createUser, request, sessionCookie, uniqueName } from "../lib/http.mjs";
import { openRawConnection } from "../lib/raw.mjs";

const TEST_TIMEOUT_MS = 90_000;
/** How long "receives nothing" waits before looking. */
const QUIET_MS = 500;

const USER_COUNT_EVENTS = ["updateTotalUsers", "updateTotalViews"];
const HOUSE_EVENTS = ["subscriptionStatus", "userJoined", "userLeaved", "houseNotification"];
const BASIC_CHAT_EVENTS = ["MessageReceived"];
const ORDER_EVENTS = ["NewOrderCreated"];
const CHAT_EVENTS = [
  "UserConnected",
  "UserDisconnected",
  "NewRoomCreated",
  "RoomDeleted",
  "PublicMessageReceived",
  "PrivateMessageReceived",
];

let server;
let base;

before(async () => {
  server = await startShowcase();
  base = server.url;
});

after(async () => {
  await stopAllHubs();
  if (server) await server.stop();
});

/** Waits QUIET_MS, then asserts that none of `connections` ({label: connection}) got any call. */
async function expectQuiet(connections, ms = QUIET_MS) {
  await sleep(ms);
  for (const [label, connection] of Object.entries(connections)) {
    assert.deepEqual(pendingEvents(connection), {}, `${label} received calls it should not have`);
  }
}

/** Opens hub connections over `transport` through `open`; stops them when `body` settles. */
function withHubsOver(transport, body) {
  return withHubsAt(base, body, { transport });
}

/** RFC 3339 in UTC with an optional fraction, as the Ticker's `at`. */
const RFC3339_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** `[1, 2, ..., n]`. */
const oneTo = (n) => Array.from({ length: n }, (_, index) => index + 1);

/**
 * Subscribes to `connection.stream(method, ...args)`. Returns `{ items, subscription, outcome,
 * settled(ms) }`: `items` fills as items arrive, `outcome` stays undefined until the stream
 * completes (`{ completed: true }`) or errors (`{ error }`), and `settled` waits for that, bounded.
 */
function collectStream(connection, method, ...args) {
  const run = { items: [], outcome: undefined };
  let settle;
  const settledPromise = new Promise((resolve) => {
    settle = resolve;
  });
  const finish = (outcome) => {
    if (run.outcome === undefined) run.outcome = outcome;
    settle(outcome);
  };
  run.subscription = connection.stream(method, ...args).subscribe({
    next: (item) => run.items.push(item),
    complete: () => finish({ completed: true }),
    error: (error) => finish({ error }),
  });
  run.settled = (ms = 10_000) => withTimeout(settledPromise, ms, `stream ${method} to end`);
  return run;
}

/** Polls `predicate` every 10 ms until it holds; fails after `ms`. */
async function waitUntil(predicate, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Invokes `Shout` with an upload of `words` (a `signalR.Subject`), bounded. */
function shout(connection, words) {
  const upload = new signalR.Subject();
  const answer = withTimeout(connection.invoke("Shout", upload), 30_000, "invoke Shout");
  for (const word of words) upload.next(word);
  upload.complete();
  return answer;
}

/** The text the official client shows for a HubError::new(message) of hub method `method`. */
const hubErrorText = (method, message) =>
  `An unexpected error occurred invoking '${method}' on the server. HubException: ${message}`;

// ---------------------------------------------------------------------------------------------
const TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"];

// The hub cases run once per transport, forced with the client's `transport` option.
for (const transportName of TRANSPORTS) {
  describe(`over ${transportName}`, () => {
    const transport = signalR.HttpTransportType[transportName];
    const withHubs = (body) => withHubsOver(transport, body);

    test("1. userCount: live user and view counters", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const a = await open("/hubs/userCount", { events: USER_COUNT_EVENTS, label: "A" });
        const [n] = await nextEvent(a, "updateTotalUsers");
        assert.ok(Number.isInteger(n) && n >= 1, `updateTotalUsers(${n}) should be a positive integer`);

        const b = await open("/hubs/userCount", { events: USER_COUNT_EVENTS, label: "B" });
        assert.deepEqual(await nextEvent(a, "updateTotalUsers"), [n + 1]);
        assert.deepEqual(await nextEvent(b, "updateTotalUsers"), [n + 1]);

        const reply = await invoke(a, "NewWindowLoaded", "Node");
        const [views] = await nextEvent(a, "updateTotalViews");
        assert.ok(Number.isInteger(views) && views >= 1, `updateTotalViews(${views}) should be a positive integer`);
        assert.deepEqual(await nextEvent(b, "updateTotalViews"), [views]);
        assert.equal(reply, `Total views for Node - ${views}`);

        // The view counter goes up by one per call, whoever calls.
        const replyB = await invoke(b, "NewWindowLoaded", "Other");
        assert.equal(replyB, `Total views for Other - ${views + 1}`);
        assert.deepEqual(await nextEvent(a, "updateTotalViews"), [views + 1]);
        assert.deepEqual(await nextEvent(b, "updateTotalViews"), [views + 1]);

        await stopHub(b);
        assert.deepEqual(await nextEvent(a, "updateTotalUsers"), [n]);
        await expectQuiet({ A: a });
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("2. deathlyHallows: votes over HTTP pushed to every client", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        // Paths match case-insensitively; handler names are registered in two spellings.
        const c1 = await open("/hubs/deathlyHallows", { events: ["updateDeathlyHallowCount"], label: "C1 /hubs/deathlyHallows" });
        const c2 = await open("/hubs/deathlyhallows", { events: ["updatedeathlyhallowcount"], label: "C2 /hubs/deathlyhallows" });

        const status = await invoke(c1, "GetVoteStatus");
        assert.deepEqual(Object.keys(status).sort(), ["cloak", "stone", "wand"]);
        for (const key of ["cloak", "stone", "wand"]) {
          assert.ok(Number.isInteger(status[key]) && status[key] >= 0, `${key} = ${status[key]}`);
        }
        const { cloak, stone, wand } = status;
        assert.deepEqual(await invoke(c2, "GetVoteStatus"), status);

        const vote = async (type) => request(base, "GET", `/home/DeathlyHallows?type=${encodeURIComponent(type)}`);

        let response = await vote("wand");
        assert.equal(response.status, 202);
        assert.deepEqual(await nextEvent(c1, "updateDeathlyHallowCount"), [cloak, stone, wand + 1]);
        assert.deepEqual(await nextEvent(c2, "updatedeathlyhallowcount"), [cloak, stone, wand + 1]);

        response = await vote("cloak");
        assert.equal(response.status, 202);
        assert.deepEqual(await nextEvent(c1, "updateDeathlyHallowCount"), [cloak + 1, stone, wand + 1]);
        assert.deepEqual(await nextEvent(c2, "updateDeathlyHallowCount"), [cloak + 1, stone, wand + 1]);

        response = await vote("stone");
        assert.equal(response.status, 202);
        assert.deepEqual(await nextEvent(c1, "updateDeathlyHallowCount"), [cloak + 1, stone + 1, wand + 1]);
        assert.deepEqual(await nextEvent(c2, "updateDeathlyHallowCount"), [cloak + 1, stone + 1, wand + 1]);

        const current = { cloak: cloak + 1, stone: stone + 1, wand: wand + 1 };
        assert.deepEqual(await invoke(c1, "GetVoteStatus"), current);

        // Unknown type: 202, nothing changes. (A broadcast of the unchanged counts is tolerated.)
        response = await vote("elderberry");
        assert.equal(response.status, 202);
        await sleep(QUIET_MS);
        for (const connection of [c1, c2]) {
          for (const args of takeEvents(connection, "updateDeathlyHallowCount")) {
            assert.deepEqual(args, [current.cloak, current.stone, current.wand]);
          }
        }
        assert.deepEqual(await invoke(c1, "GetVoteStatus"), current);
        assert.deepEqual(await invoke(c2, "GetVoteStatus"), current);
        await expectQuiet({ C1: c1, C2: c2 }, 0);
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("3. houses: groups, notifications, join and leave", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const a = await open("/hubs/houses", { events: HOUSE_EVENTS, label: "A" });
        const b = await open("/hubs/houses", { events: HOUSE_EVENTS, label: "B" });
        const c = await open("/hubs/houses", { events: HOUSE_EVENTS, label: "C" });

        await invoke(a, "JoinHouse", "Gryffindor");
        assert.deepEqual(await nextEvent(a, "subscriptionStatus"), ["Gryffindor", "Gryffindor", true]);

        await invoke(b, "JoinHouse", "Gryffindor");
        assert.deepEqual(await nextEvent(b, "subscriptionStatus"), ["Gryffindor", "Gryffindor", true]);
        assert.deepEqual(await nextEvent(a, "userJoined"), ["Gryffindor", ""]);

        await invoke(c, "JoinHouse", "Slytherin");
        assert.deepEqual(await nextEvent(c, "subscriptionStatus"), ["Slytherin", "Slytherin", true]);

        // A second house: `joined` lists both, separated by a space.
        await invoke(a, "JoinHouse", "Hufflepuff");
        assert.deepEqual(await nextEvent(a, "subscriptionStatus"), ["Gryffindor Hufflepuff", "Hufflepuff", true]);

        await send(a, "SendNotification", "Gryffindor", "hello");
        assert.deepEqual(await nextEvent(a, "houseNotification"), ["", "Gryffindor", "hello"]);
        assert.deepEqual(await nextEvent(b, "houseNotification"), ["", "Gryffindor", "hello"]);
        // C (Slytherin only) gets neither the notification nor any join news of other houses; nobody
        // got a userJoined for a house they are not in, nor for their own join.
        await expectQuiet({ A: a, B: b, C: c });

        // Joining a house again does nothing.
        await invoke(b, "JoinHouse", "Gryffindor");
        await expectQuiet({ A: a, B: b, C: c });

        await invoke(a, "LeaveHouse", "Gryffindor");
        assert.deepEqual(await nextEvent(a, "subscriptionStatus"), ["Hufflepuff", "Gryffindor", false]);
        assert.deepEqual(await nextEvent(b, "userLeaved"), ["Gryffindor", ""]);

        // A has left: only B hears Gryffindor now.
        await send(b, "SendNotification", "Gryffindor", "after");
        assert.deepEqual(await nextEvent(b, "houseNotification"), ["", "Gryffindor", "after"]);
        await expectQuiet({ A: a, B: b, C: c });

        // Leaving a house one is not in does nothing.
        await invoke(a, "LeaveHouse", "Gryffindor");
        await expectQuiet({ A: a, B: b, C: c });

        await invoke(a, "LeaveHouse", "Hufflepuff");
        assert.deepEqual(await nextEvent(a, "subscriptionStatus"), ["", "Hufflepuff", false]);
        await expectQuiet({ A: a, B: b, C: c });
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("4. basicChat: authorization and per-user targeting", { timeout: TEST_TIMEOUT_MS }, async () => {
      const u1 = await createUser(base, "bcone");
      const u2 = await createUser(base, "bctwo");
      await withHubs(async (open) => {
        const x = await open("/hubs/basicChat", { events: BASIC_CHAT_EVENTS, label: "X (anonymous)" });
        const u1a = await open("/hubs/basicChat", { events: BASIC_CHAT_EVENTS, token: u1.token, label: "U1a" });
        const u1b = await open("/hubs/basicChat", { events: BASIC_CHAT_EVENTS, token: u1.token, label: "U1b" });
        const u2c = await open("/hubs/basicChat", { events: BASIC_CHAT_EVENTS, token: u2.token, label: "U2" });
        const everyone = { X: x, U1a: u1a, U1b: u1b, U2: u2c };

        await assert.rejects(invoke(x, "SendMessage", "anon", "", "hi"), (error) => {
          assert.ok(error instanceof Error);
          assert.equal(error.message, "Failed to invoke 'SendMessage' because user is unauthorized");
          return true;
        });

        // To one user by name: every connection of that user, nobody else.
        await invoke(u2c, "SendMessage", u2.userName, u1.userName, "to u1");
        assert.deepEqual(await nextEvent(u1a, "MessageReceived"), [u2.userName, "to u1"]);
        assert.deepEqual(await nextEvent(u1b, "MessageReceived"), [u2.userName, "to u1"]);
        await expectQuiet(everyone);

        // Empty receiver: everyone, the anonymous listener included.
        await invoke(u2c, "SendMessage", u2.userName, "", "to all");
        for (const connection of Object.values(everyone)) {
          assert.deepEqual(await nextEvent(connection, "MessageReceived"), [u2.userName, "to all"]);
        }

        // Null receiver: everyone too.
        await invoke(u1b, "SendMessage", u1.userName, null, "null receiver");
        for (const connection of Object.values(everyone)) {
          assert.deepEqual(await nextEvent(connection, "MessageReceived"), [u1.userName, "null receiver"]);
        }
        await expectQuiet(everyone);

        // Unknown receiver: the invocation fails and nothing is delivered.
        const nobody = uniqueName("nobody");
        await assert.rejects(invoke(u2c, "SendMessage", u2.userName, nobody, "lost"), (error) => {
          assert.ok(error instanceof Error);
          assert.ok(
            error.message.startsWith("An unexpected error occurred invoking 'SendMessage' on the server."),
            `unexpected error text: ${JSON.stringify(error.message)}`,
          );
          return true;
        });
        await expectQuiet(everyone);
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("5. order: form post pushes NewOrderCreated and lists the order", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const o1 = await open("/hubs/order", { events: ORDER_EVENTS, label: "O1" });
        const o2 = await open("/hubs/order", { events: ORDER_EVENTS, label: "O2" });

        const name = uniqueName("buyer");
        const itemName = "Elder Wand";
        const posted = await request(base, "POST", "/Home/OrderPost", {
          form: { name, itemName, count: "3" },
          redirect: "manual",
        });
        assert.ok(posted.status >= 300 && posted.status < 400, `OrderPost answered ${posted.status}: ${posted.text}`);
        assert.ok(posted.headers.get("location"), "redirect without a Location header");

        assert.deepEqual(await nextEvent(o1, "NewOrderCreated"), []);
        assert.deepEqual(await nextEvent(o2, "NewOrderCreated"), []);

        const listed = await request(base, "GET", "/Home/GetAllOrder");
        assert.equal(listed.status, 200);
        const body = listed.json();
        assert.ok(Array.isArray(body.data), `GetAllOrder: ${listed.text}`);
        const mine = body.data.filter((order) => order.name === name);
        assert.equal(mine.length, 1, `GetAllOrder: ${listed.text}`);
        assert.ok(Number.isInteger(mine[0].id), `order id ${mine[0].id}`);
        assert.deepEqual(mine[0], { id: mine[0].id, name, itemName, count: 3 });

        // A second order gets its own id and one more push.
        const name2 = uniqueName("buyer");
        const posted2 = await request(base, "POST", "/Home/OrderPost", {
          form: { name: name2, itemName: "Cloak", count: "1" },
          redirect: "manual",
        });
        assert.ok(posted2.status >= 300 && posted2.status < 400, `OrderPost answered ${posted2.status}`);
        assert.deepEqual(await nextEvent(o1, "NewOrderCreated"), []);
        assert.deepEqual(await nextEvent(o2, "NewOrderCreated"), []);
        const second = (await request(base, "GET", "/Home/GetAllOrder")).json().data.find((order) => order.name === name2);
        assert.ok(second, "second order not listed");
        assert.deepEqual(second, { id: second.id, name: name2, itemName: "Cloak", count: 1 });
        assert.ok(Number.isInteger(second.id) && second.id !== mine[0].id);
        await expectQuiet({ O1: o1, O2: o2 });
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("6a. chat hub: presence, rooms, public and private messages", { timeout: TEST_TIMEOUT_MS }, async () => {
      const u1 = await createUser(base, "chone");
      const u2 = await createUser(base, "chtwo");
      const u3 = await createUser(base, "chthree");
      await withHubs(async (open) => {
        const c1 = await open("/hubs/chat", { events: CHAT_EVENTS, token: u1.token, label: "U1" });
        const c3 = await open("/hubs/chat", { events: CHAT_EVENTS, token: u3.token, label: "U3" });
        assert.deepEqual(await nextEvent(c1, "UserConnected"), [u3.id, u3.userName]);

        const c2a = await open("/hubs/chat", { events: CHAT_EVENTS, token: u2.token, label: "U2a" });
        assert.deepEqual(await nextEvent(c1, "UserConnected"), [u2.id, u2.userName]);
        assert.deepEqual(await nextEvent(c3, "UserConnected"), [u2.id, u2.userName]);

        // A second connection of U2: whether it is announced again is the server's choice; if it is,
        // it names U2 once.
        const c2b = await open("/hubs/chat", { events: CHAT_EVENTS, token: u2.token, label: "U2b" });
        await sleep(QUIET_MS);
        for (const connection of [c1, c3, c2a, c2b]) {
          const seen = takeEvents(connection, "UserConnected");
          assert.ok(seen.length <= 1, `UserConnected repeated: ${JSON.stringify(seen)}`);
          for (const args of seen) assert.deepEqual(args, [u2.id, u2.userName]);
        }
        const all = { U1: c1, U2a: c2a, U2b: c2b, U3: c3 };
        await expectQuiet(all, 0);

        await invoke(c1, "NewRoomCreated", 5, 7, "Room");
        for (const connection of Object.values(all)) {
          assert.deepEqual(await nextEvent(connection, "NewRoomCreated"), [5, 7, "Room", u1.id, u1.userName]);
        }

        await invoke(c3, "RoomDeleted", 7, "Room", 1);
        for (const connection of Object.values(all)) {
          assert.deepEqual(await nextEvent(connection, "RoomDeleted"), [7, "Room", 1, u3.id, u3.userName]);
        }

        await invoke(c2a, "SendPublicMessage", 1, "General", "hey");
        for (const connection of Object.values(all)) {
          assert.deepEqual(await nextEvent(connection, "PublicMessageReceived"), [1, "General", u2.id, u2.userName, "hey"]);
        }

        await invoke(c1, "SendPrivateMessage", u2.id, u2.userName, "psst");
        const chatIds = [];
        for (const connection of [c1, c2a, c2b]) {
          const args = await nextEvent(connection, "PrivateMessageReceived");
          assert.equal(args.length, 6, `PrivateMessageReceived args: ${JSON.stringify(args)}`);
          assert.deepEqual(args.slice(0, 5), [u1.id, u1.userName, u2.id, u2.userName, "psst"]);
          assert.match(args[5], UUID_RE);
          chatIds.push(args[5]);
        }
        assert.equal(new Set(chatIds).size, 1, `chatId differs between connections: ${chatIds}`);
        await expectQuiet(all);

        // A second private message gets a fresh chatId.
        await invoke(c2b, "SendPrivateMessage", u1.id, u1.userName, "back");
        for (const connection of [c1, c2a, c2b]) {
          const args = await nextEvent(connection, "PrivateMessageReceived");
          assert.deepEqual(args.slice(0, 5), [u2.id, u2.userName, u1.id, u1.userName, "back"]);
          assert.match(args[5], UUID_RE);
          assert.notEqual(args[5], chatIds[0]);
        }
        await expectQuiet(all);

        // Presence: only the last connection of U2 closing announces U2 as gone.
        await stopHub(c2b);
        await expectQuiet({ U1: c1, U2a: c2a, U3: c3 });
        await stopHub(c2a);
        assert.deepEqual(await nextEvent(c1, "UserDisconnected"), [u2.id, u2.userName]);
        assert.deepEqual(await nextEvent(c3, "UserDisconnected"), [u2.id, u2.userName]);
        await expectQuiet({ U1: c1, U3: c3 });
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("8a. stream: Ticker streams count ticks in order, then completes", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        // Nothing votes during this case, so every tick carries the counts read here.
        const hallows = await open("/hubs/deathlyhallows", { label: "votes" });
        const votes = await invoke(hallows, "GetVoteStatus");
        // The path matches in any casing, as the other hubs' paths do.
        const s = await open("/hubs/Stream", { label: "S" });

        const startedAt = Date.now();
        const run = collectStream(s, "Ticker", 5, 50);
        assert.deepEqual(await run.settled(), { completed: true });
        const endedAt = Date.now();
        assert.deepEqual(run.items.map((tick) => tick.seq), [1, 2, 3, 4, 5]);
        for (const tick of run.items) {
          assert.deepEqual(Object.keys(tick).sort(), ["at", "seq", "votes"]);
          assert.deepEqual(tick.votes, votes);
          assert.match(tick.at, RFC3339_UTC_RE);
          const at = Date.parse(tick.at);
          // Same machine, same clock; a second of slack for rounding and scheduling.
          assert.ok(at >= startedAt - 1000 && at <= endedAt + 1000, `tick ${tick.seq} at ${tick.at}`);
        }
        // The first tick comes at once, then one per interval: four intervals between 1 and 5
        // (the server's times are whole milliseconds, hence the slack of a few).
        const spread = Date.parse(run.items[4].at) - Date.parse(run.items[0].at);
        assert.ok(spread >= 4 * 50 - 5, `ticks 1..5 spread over ${spread} ms`);

        // The smallest run: one tick.
        const one = collectStream(s, "Ticker", 1, 5000);
        assert.deepEqual(await one.settled(), { completed: true });
        assert.deepEqual(one.items.map((tick) => [tick.seq, tick.votes]), [[1, votes]]);
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("8b. stream: disposing the Ticker subscription stops it", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const s = await open("/hubs/stream", { label: "S" });
        const run = collectStream(s, "Ticker", 1000, 50);
        await waitUntil(() => run.items.length >= 3, "3 ticks");
        run.subscription.dispose();
        const seen = run.items.length;
        // Ten intervals: nothing more arrives, and the stream neither completes nor errors.
        await sleep(QUIET_MS);
        assert.equal(run.items.length, seen, "ticks arrived after dispose()");
        assert.deepEqual(run.items.map((tick) => tick.seq), oneTo(seen));
        assert.equal(run.outcome, undefined);

        // The connection carries on: a new ticker runs to its end.
        const next = collectStream(s, "Ticker", 2, 50);
        assert.deepEqual(await next.settled(), { completed: true });
        assert.deepEqual(next.items.map((tick) => tick.seq), [1, 2]);
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("8c. stream: Ticker refuses out-of-range arguments", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const s = await open("/hubs/stream", { label: "S" });
        const cases = [
          [[0, 100], "count must be between 1 and 1000, got 0."],
          [[1001, 100], "count must be between 1 and 1000, got 1001."],
          [[-3, 100], "count must be between 1 and 1000, got -3."],
          [[5, 49], "intervalMs must be between 50 and 5000, got 49."],
          [[5, 5001], "intervalMs must be between 50 and 5000, got 5001."],
        ];
        for (const [args, message] of cases) {
          const run = collectStream(s, "Ticker", ...args);
          const outcome = await run.settled();
          assert.ok(outcome.error instanceof Error, `Ticker(${args}) ended with ${JSON.stringify(outcome)}`);
          assert.equal(outcome.error.message, hubErrorText("Ticker", message));
          assert.deepEqual(run.items, []);
        }
      });
    });

    // ---------------------------------------------------------------------------------------------
    test("8d. stream: Shout upper-cases an uploaded stream of words", { timeout: TEST_TIMEOUT_MS }, async () => {
      await withHubs(async (open) => {
        const s = await open("/hubs/stream", { label: "S" });
        assert.equal(await shout(s, ["Mischief", "managed", "straße"]), "MISCHIEF MANAGED STRASSE");
        assert.equal(await shout(s, []), "");
        // At the limits: 1000 words, and 65536 bytes in all (two-byte characters count twice;
        // each item stays under the hub's 32 KiB message size).
        assert.equal(await shout(s, Array(1000).fill("a")), Array(1000).fill("A").join(" "));
        const quarter = "é".repeat(8192); // 16384 bytes
        const quarters = [quarter, quarter, quarter, quarter];
        assert.equal(await shout(s, quarters), Array(4).fill("É".repeat(8192)).join(" "));

        // Past the limits: the exact HubException text; the connection stays usable.
        await assert.rejects(shout(s, Array(1001).fill("a")), (error) => {
          assert.equal(error.message, hubErrorText("Shout", "Shout takes at most 1000 words."));
          return true;
        });
        await assert.rejects(shout(s, [...quarters, "x"]), (error) => {
          assert.equal(error.message, hubErrorText("Shout", "Shout takes at most 65536 bytes of text."));
          return true;
        });
        assert.equal(await shout(s, ["still", "here"]), "STILL HERE");
      });
    });
  });
}

/** The HTTP-only cases below use WebSockets where they open a hub. */
const withHubs = (body) => withHubsOver(signalR.HttpTransportType.WebSockets, body);

// ---------------------------------------------------------------------------------------------
test("8e. stream: CancelInvocation stops the server's Ticker (raw JSON protocol)", { timeout: TEST_TIMEOUT_MS }, async () => {
  // The official client forgets a disposed stream's callbacks, so it cannot tell whether the
  // server went on sending; the raw protocol shows what actually arrives.
  const RS = "\x1e";
  const raw = await openRawConnection(new URL("/hubs/stream", base).href, signalR.HttpTransportType.WebSockets);
  const messages = () => raw.received.join("").split(RS).filter((text) => text !== "").map((text) => JSON.parse(text));
  const ofInvocation = (id, type) => messages().filter((message) => message.invocationId === id && message.type === type);
  try {
    await raw.send(JSON.stringify({ protocol: "json", version: 1 }) + RS);
    await waitUntil(() => messages().length >= 1, "the handshake response");
    assert.deepEqual(messages()[0], {});

    await raw.send(JSON.stringify({ type: 4, invocationId: "t1", target: "Ticker", arguments: [1000, 50] }) + RS);
    await waitUntil(() => ofInvocation("t1", 2).length >= 3, "3 ticks");
    await raw.send(JSON.stringify({ type: 5, invocationId: "t1" }) + RS);
    // Items already on the way may still land; after that, nothing more.
    await sleep(200);
    const seen = ofInvocation("t1", 2).length;
    await sleep(QUIET_MS);
    const items = ofInvocation("t1", 2);
    assert.equal(items.length, seen, "the server sent ticks after CancelInvocation");
    assert.deepEqual(items.map((message) => message.item.seq), oneTo(seen));
    assert.ok(seen < 20, `${seen} ticks arrived; the cancel came after 3`);

    // The connection goes on: another ticker runs to its completion.
    await raw.send(JSON.stringify({ type: 4, invocationId: "t2", target: "Ticker", arguments: [2, 50] }) + RS);
    await waitUntil(() => ofInvocation("t2", 3).length === 1, "the completion of t2");
    assert.deepEqual(ofInvocation("t2", 2).map((message) => message.item.seq), [1, 2]);
    assert.deepEqual(ofInvocation("t2", 3), [{ type: 3, invocationId: "t2" }]);
  } finally {
    await raw.stop().catch(() => {});
  }
});


// ---------------------------------------------------------------------------------------------
test("6b. chat REST: rooms and users", { timeout: TEST_TIMEOUT_MS }, async () => {
  const ua = await createUser(base, "roomsa");
  const ub = await createUser(base, "roomsb");

  // Without (or with a bogus) bearer token: 401.
  for (const auth of [{}, { authorization: "Bearer not-a-token" }]) {
    assert.equal((await request(base, "GET", "/ChatRooms/GetChatRoom", auth)).status, 401);
    assert.equal((await request(base, "GET", "/ChatRooms/GetChatUser", auth)).status, 401);
    assert.equal((await request(base, "POST", "/ChatRooms/PostChatRoom", { ...auth, json: { id: 0, name: "X" } })).status, 401);
    assert.equal((await request(base, "DELETE", "/ChatRooms/DeleteChatRoom/1", auth)).status, 401);
  }

  const as = { token: ua.token };
  const createRoom = async (name) => {
    const response = await request(base, "POST", "/ChatRooms/PostChatRoom", { ...as, json: { id: 0, name } });
    assert.equal(response.status, 201, `PostChatRoom: ${response.text}`);
    const room = response.json();
    assert.ok(Number.isInteger(room.id) && room.id > 0, `room id ${room.id}`);
    assert.deepEqual(room, { id: room.id, name });
    return room;
  };
  const listRooms = async () => {
    const response = await request(base, "GET", "/ChatRooms/GetChatRoom", as);
    assert.equal(response.status, 200);
    const rooms = response.json();
    assert.ok(Array.isArray(rooms), `GetChatRoom: ${response.text}`);
    return rooms;
  };

  const r = await createRoom("R");
  const s = await createRoom("S");
  assert.notEqual(r.id, s.id);
  let rooms = await listRooms();
  assert.deepEqual(rooms.find((room) => room.id === r.id), { id: r.id, name: "R" });
  assert.deepEqual(rooms.find((room) => room.id === s.id), { id: s.id, name: "S" });

  const users = await request(base, "GET", "/ChatRooms/GetChatUser", as);
  assert.equal(users.status, 200);
  const others = users.json();
  assert.ok(Array.isArray(others), `GetChatUser: ${users.text}`);
  assert.deepEqual(others.find((user) => user.id === ub.id), { id: ub.id, userName: ub.userName });
  assert.equal(others.find((user) => user.id === ua.id || user.userName === ua.userName), undefined, "the caller is listed");
  // ub sees ua and not itself.
  const fromB = (await request(base, "GET", "/ChatRooms/GetChatUser", { token: ub.token })).json();
  assert.deepEqual(fromB.find((user) => user.id === ua.id), { id: ua.id, userName: ua.userName });
  assert.equal(fromB.find((user) => user.id === ub.id), undefined);

  for (const room of [r, s]) {
    const deleted = await request(base, "DELETE", `/ChatRooms/DeleteChatRoom/${room.id}`, as);
    assert.equal(deleted.status, 200, `DeleteChatRoom: ${deleted.text}`);
    rooms = await listRooms();
    assert.equal(rooms.find((entry) => entry.id === room.id), undefined, "deleted room still listed");
    assert.deepEqual(deleted.json(), { deleted: room.id, selected: rooms.length > 0 ? rooms[0].id : 0 });

    const again = await request(base, "DELETE", `/ChatRooms/DeleteChatRoom/${room.id}`, as);
    assert.equal(again.status, 404);
  }
});

// ---------------------------------------------------------------------------------------------
test("7. accounts: register, login, token, cookie session", { timeout: TEST_TIMEOUT_MS }, async () => {
  const userName = uniqueName("acct");
  const password = "Correct-Horse-1";

  assert.equal((await request(base, "POST", "/account/register", { json: { userName, password: "" } })).status, 400);
  assert.equal((await request(base, "POST", "/account/register", { json: { userName: "", password } })).status, 400);

  const registered = await request(base, "POST", "/account/register", { json: { userName, password } });
  assert.equal(registered.status, 200, registered.text);
  const account = registered.json();
  assert.match(account.id, UUID_RE);
  assert.deepEqual(account, { id: account.id, userName });
  assert.ok(sessionCookie(registered.headers), "register set no cookie");

  const duplicate = await request(base, "POST", "/account/register", { json: { userName, password: "Other-Pass-2" } });
  assert.equal(duplicate.status, 409);

  assert.equal((await request(base, "POST", "/account/login", { json: { userName, password: "wrong-password" } })).status, 401);
  assert.equal((await request(base, "POST", "/account/login", { json: { userName: uniqueName("ghost"), password } })).status, 401);

  const login = await request(base, "POST", "/account/login", { json: { userName, password } });
  assert.equal(login.status, 200, login.text);
  assert.deepEqual(login.json(), { id: account.id, userName });
  const cookie = sessionCookie(login.headers);
  assert.ok(cookie, "login set no cookie");

  // A form login is accepted too (200, or a redirect for a page).
  const formLogin = await request(base, "POST", "/account/login", { form: { userName, password }, redirect: "manual" });
  assert.ok(formLogin.status === 200 || (formLogin.status >= 300 && formLogin.status < 400), `form login: ${formLogin.status}`);

  const token = await request(base, "POST", "/account/token", { json: { userName, password } });
  assert.equal(token.status, 200);
  assert.equal(typeof token.json().token, "string");

  // The session cookie authenticates a hub connection.
  await withHubs(async (open) => {
    const viaCookie = await open("/hubs/basicChat", { events: BASIC_CHAT_EVENTS, headers: { Cookie: cookie }, label: "cookie" });
    await invoke(viaCookie, "SendMessage", userName, "", "via cookie");
    assert.deepEqual(await nextEvent(viaCookie, "MessageReceived"), [userName, "via cookie"]);
  });

  const logout = await request(base, "POST", "/account/logout", { cookie, redirect: "manual" });
  assert.ok(logout.status < 400, `logout answered ${logout.status}`);
});
