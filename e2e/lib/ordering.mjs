// The ordering cases shared by the interop suites: 10 000 messages each way must arrive
// complete and in order. They use the interop server's extra methods SendNumbers, Record and
// GetRecorded (see e2e/interop-server/README.md).
import assert from "node:assert/strict";

import { takeEvents, withTimeout } from "./hub.mjs";

/** How many messages go each way. */
export const ORDERING_COUNT = 10_000;
/** The bound on each step of an ordering case. */
export const ORDERING_WAIT_MS = 60_000;

const inOrder = () => Array.from({ length: ORDERING_COUNT }, (_, i) => i);

/** `connection` (listening for `number`) receives Number(0..count) before SendNumbers completes. */
export async function expectNumbersInOrder(connection) {
  const result = await withTimeout(
    connection.invoke("SendNumbers", ORDERING_COUNT),
    ORDERING_WAIT_MS,
    `invoke SendNumbers(${ORDERING_COUNT})`,
  );
  assert.equal(result, ORDERING_COUNT);
  const numbers = takeEvents(connection, "number").map((args) => {
    assert.equal(args.length, 1, `Number called with ${JSON.stringify(args)}`);
    return args[0];
  });
  assert.equal(numbers.length, ORDERING_COUNT, "Number calls received before the completion");
  assert.deepEqual(numbers, inOrder());
}

/** Record(0..count) sent without waiting one by one all arrive, in order. */
export async function expectRecordsInOrder(connection) {
  const sends = [];
  for (let i = 0; i < ORDERING_COUNT; i += 1) sends.push(connection.send("Record", i));
  await withTimeout(Promise.all(sends), ORDERING_WAIT_MS, `${ORDERING_COUNT} sends of Record`);
  const recorded = await withTimeout(connection.invoke("GetRecorded"), ORDERING_WAIT_MS, "invoke GetRecorded");
  assert.ok(Array.isArray(recorded), `GetRecorded = ${JSON.stringify(recorded)?.slice(0, 200)}`);
  assert.equal(recorded.length, ORDERING_COUNT);
  assert.deepEqual(recorded, inOrder());
}
