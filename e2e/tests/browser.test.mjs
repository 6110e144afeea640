// Browser end-to-end test of the showcase: headless Chromium, two browser contexts standing for
// two users in two windows side by side. It drives the real pages (account.html, basic-chat.html,
// deathly-hallows.html) and relies on the element ids documented at the top of each page.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";
import { binaryPath, startShowcase } from "../lib/server.mjs";

const WAIT_MS = 15_000;
const CHROMIUM = "/usr/bin/chromium";
const LAUNCH_OPTIONS = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};

let server;
let browser;
/** Two users, each in their own browser context: `{ label, name, password, context, page }`. */
const users = [];

function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

/** Waits until `selector`'s trimmed text equals `expected`; the error shows what it showed instead. */
async function waitForText(page, selector, expected) {
  try {
    await page.waitForFunction(
      ([sel, text]) => document.querySelector(sel)?.textContent.trim() === text,
      [selector, expected],
      { timeout: WAIT_MS },
    );
  } catch (error) {
    const actual = await page.evaluate((sel) => document.querySelector(sel)?.textContent.trim() ?? null, selector)
      .catch(() => "<page unavailable>");
    throw new Error(`${selector} never showed ${JSON.stringify(expected)}; it shows ${JSON.stringify(actual)}`, { cause: error });
  }
}

/** Waits until the page's hub connection badge says "connected". */
async function waitForConnected(page) {
  try {
    await page.locator('#connection-status[data-state="connected"]').waitFor({ timeout: WAIT_MS });
  } catch (error) {
    const badge = await page.evaluate(() => document.getElementById("connection-status")?.textContent ?? null)
      .catch(() => "<page unavailable>");
    throw new Error(`${page.url()} did not connect to its hub; status: ${JSON.stringify(badge)}`, { cause: error });
  }
}

/**
 * Waits until an item of `#message-list` has exactly `text` as its message, or `#chat-error`
 * shows an error. Returns `{ sender }` or `{ error }`.
 */
async function waitForBasicChatMessage(page, text) {
  const handle = await page.waitForFunction(
    (expected) => {
      const error = document.getElementById("chat-error")?.textContent.trim();
      if (error) return { error };
      for (const item of document.querySelectorAll("#message-list li.message")) {
        if (item.querySelector(".message-text")?.textContent === expected) {
          return { sender: item.querySelector(".message-sender")?.textContent ?? null };
        }
      }
      return false;
    },
    text,
    { timeout: WAIT_MS },
  );
  return handle.jsonValue();
}

async function submitCredentials(page, form, name, password) {
  await page.locator(`#${form}-username`).fill(name);
  await page.locator(`#${form}-password`).fill(password);
  await page.locator(`#${form}-submit`).click();
}

before(async () => {
  const binary = binaryPath("showcase");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: build it first (cargo build -p showcase)`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);

  server = await startShowcase();
  browser = await chromium.launch(LAUNCH_OPTIONS);
  for (const label of ["a", "b"]) {
    const context = await browser.newContext({ baseURL: server.url });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[browser ${label}] page error: ${error.message}`));
    users.push({ label, name: uniqueName(`e2e-${label}`), password: `pw-${randomUUID()}`, context, page });
  }
}, { timeout: 90_000 });

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
}, { timeout: 30_000 });

test("two users register and log in through account.html", { timeout: 60_000 }, async () => {
  assert.equal(users.length, 2, "browser contexts were not set up");
  for (const user of users) {
    const { page } = user;
    await page.goto("/account.html");

    await submitCredentials(page, "register", user.name, user.password);
    await waitForText(page, "#account-message", `Registered and logged in as ${user.name}.`);

    await submitCredentials(page, "login", user.name, user.password);
    await waitForText(page, "#account-message", `Logged in as ${user.name}.`);
    await page.locator(`#account-current[data-user="${user.name}"]`).waitFor({ timeout: WAIT_MS });

    // The session cookie is the context's: its request client sees the same user.
    const me = await user.context.request.get("/account/me");
    assert.equal(me.status(), 200, `GET /account/me for ${user.name}`);
    assert.equal((await me.json()).userName, user.name);
  }
});

/**
 * Sends a basic chat message from the first window and sees it in both windows; `query` (for
 * example `?transport=LongPolling`) picks the pages' transport.
 */
async function chatCrossesWindows(query) {
  const [a, b] = users;
  assert.ok(a && b, "browser contexts were not set up");
  await Promise.all(users.map(({ page }) => page.goto(`/basic-chat.html${query}`)));
  await Promise.all(users.map(({ page }) => waitForConnected(page)));

  const text = `Hello from ${a.name}, ${randomUUID()}`;
  await a.page.locator("#chat-sender").fill(a.name);
  await a.page.locator("#chat-receiver").fill("");
  await a.page.locator("#chat-message").fill(text);
  await a.page.locator("#chat-send").click();

  const [seenByA, seenByB] = await Promise.all([
    waitForBasicChatMessage(a.page, text),
    waitForBasicChatMessage(b.page, text),
  ]);
  assert.deepEqual(seenByA, { sender: a.name }, "sender's window");
  assert.deepEqual(seenByB, { sender: a.name }, "other window");
  assert.equal((await a.page.locator("#chat-error").textContent()).trim(), "");
}

test("a basic chat message to everyone appears in both windows", { timeout: 60_000 }, async () => {
  await chatCrossesWindows("");
});

test("the same chat flow with the pages forced to Long Polling", { timeout: 60_000 }, async () => {
  await chatCrossesWindows("?transport=LongPolling");
});

test("a Deathly Hallows vote in one window updates the count in the other", { timeout: 60_000 }, async () => {
  const [a, b] = users;
  assert.ok(a && b, "browser contexts were not set up");
  await Promise.all(users.map(({ page }) => page.goto("/deathly-hallows.html")));
  await Promise.all(users.map(async ({ page }) => {
    await waitForConnected(page);
    await page.locator('#vote-counts[data-loaded="true"]').waitFor({ timeout: WAIT_MS });
  }));

  const initial = Number((await b.page.locator("#count-cloak").textContent()).trim());
  assert.ok(Number.isInteger(initial) && initial >= 0, `initial cloak count ${initial}`);

  await a.page.locator("#vote-cloak").click();

  await waitForText(b.page, "#count-cloak", String(initial + 1));
  await waitForText(a.page, "#count-cloak", String(initial + 1));
});

test("the streaming page lists ticker ticks as they arrive, completes, stops, and shouts", { timeout: 60_000 }, async () => {
  const [a, b] = users;
  assert.ok(a && b, "browser contexts were not set up");
  // The other window shows the vote counts every tick should carry (nobody votes meanwhile).
  await b.page.goto("/deathly-hallows.html");
  await waitForConnected(b.page);
  await b.page.locator('#vote-counts[data-loaded="true"]').waitFor({ timeout: WAIT_MS });
  const counts = {};
  for (const type of ["cloak", "stone", "wand"]) {
    counts[type] = Number((await b.page.locator(`#count-${type}`).textContent()).trim());
  }
  const tickText = `Cloak ${counts.cloak} · Stone ${counts.stone} · Wand ${counts.wand}`;

  const { page } = a;
  await page.goto("/stream.html?transport=LongPolling");
  await waitForConnected(page);
  const ticks = () => page.evaluate(() => [...document.querySelectorAll("#ticker-list li.tick")]
    .map((item) => ({ seq: item.dataset.seq, who: item.querySelector(".who")?.textContent, text: item.lastChild.textContent })));

  // Five ticks, 200 ms apart: the first shows while the stream still runs, then it completes.
  await page.locator("#ticker-count").fill("5");
  await page.locator("#ticker-interval").fill("200");
  await page.locator("#ticker-start").click();
  await page.waitForFunction(
    () => document.querySelectorAll("#ticker-list li.tick").length >= 1
      && document.getElementById("ticker-status").dataset.state === "running",
    null,
    { timeout: WAIT_MS },
  );
  await waitForText(page, "#ticker-status", "Completed: 5 ticks.");
  assert.deepEqual(await ticks(), [1, 2, 3, 4, 5].map((n) => ({ seq: String(n), who: `#${n}`, text: tickText })));

  // Stop cancels a long run: the count shown in the status is what the list keeps.
  await page.locator("#ticker-count").fill("1000");
  await page.locator("#ticker-interval").fill("50");
  await page.locator("#ticker-start").click();
  await page.waitForFunction(() => document.querySelectorAll("#ticker-list li.tick").length >= 2, null, { timeout: WAIT_MS });
  await page.locator("#ticker-stop").click();
  await page.locator('#ticker-status[data-state="stopped"]').waitFor({ timeout: WAIT_MS });
  const stopped = (await ticks()).length;
  assert.equal((await page.locator("#ticker-status").textContent()).trim(), `Stopped after ${stopped} ticks.`);
  await page.waitForTimeout(500);
  assert.deepEqual((await ticks()).map((tick) => tick.seq), Array.from({ length: stopped }, (_, i) => String(i + 1)));

  // Shout uploads the words one by one; the answer is shown as text, markup and all.
  await page.locator("#shout-text").fill("Mischief  managed\n<b>wand</b>");
  await page.locator("#shout-submit").click();
  await waitForText(page, "#shout-result", "MISCHIEF MANAGED <B>WAND</B>");
  assert.equal(await page.locator("#shout-result *").count(), 0, "the answer was rendered as markup");
});
