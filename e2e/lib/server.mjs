// Starts a server binary of this workspace on a free loopback port and returns its base URL.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, "target");

/** Path of a binary built by `cargo build` (debug profile unless E2E_PROFILE says otherwise). */
export function binaryPath(name) {
  return join(targetDir, process.env.E2E_PROFILE ?? "debug", name);
}

/**
 * Starts the showcase and resolves once it prints its address. By default it gets a fresh
 * database of its own; `database` shares a database file with other nodes (the caller removes
 * it), and `redis` puts its hubs on that Redis server (`--redis`).
 * Returns `{ url, stop }`; `stop()` kills the process and removes a database of its own.
 */
export async function startShowcase({ database, redis } = {}) {
  const dir = database === undefined ? mkdtempSync(join(tmpdir(), "showcase-e2e-")) : undefined;
  const args = ["--addr", "127.0.0.1:0", "--database", database ?? join(dir, "showcase.db")];
  if (redis !== undefined) args.push("--redis", redis);
  const child = spawn(binaryPath("showcase"), args, { stdio: ["ignore", "pipe", "inherit"] });
  const removeOwnDatabase = () => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  let url;
  try {
    url = await readListeningLine(child, /^listening on (http:\/\/\S+)$/);
  } catch (error) {
    child.kill("SIGKILL");
    removeOwnDatabase();
    throw error;
  }
  return {
    url,
    async stop() {
      await terminate(child);
      removeOwnDatabase();
    },
  };
}

/**
 * Starts the interop server (the test server of the official clients' functional tests, see
 * shared/interop/TESTHUB.md) and resolves once it prints its address.
 * Returns `{ url, stop }`; `stop()` terminates the process (SIGKILL if SIGTERM is not enough).
 */
export async function startInterop() {
  const binary = binaryPath("interop-server");
  if (!existsSync(binary)) {
    throw new Error(`${binary} does not exist; build it with cargo first`);
  }
  const child = spawn(binary, ["--addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  let url;
  try {
    // The contract says nothing else is printed on stdout before this line.
    url = await readListeningLine(child, /^Now listening on: (http:\/\/\S+)$/, { firstLineOnly: true });
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    url,
    async stop() {
      await terminate(child);
    },
  };
}

/** Sends SIGTERM, waits up to `graceMs` for the exit, then SIGKILL (and waits up to 5 s more). */
async function terminate(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  // The timer is unref'd so that a server that exited in time does not keep Node alive.
  const within = (ms) =>
    Promise.race([exited.then(() => true), new Promise((done) => setTimeout(done, ms, false).unref())]);
  child.kill("SIGTERM");
  if (await within(graceMs)) return;
  child.kill("SIGKILL");
  await within(5_000);
}

/**
 * Resolves with the first capture group of the first stdout line matching `pattern`.
 * With `firstLineOnly`, any other line before it is an error.
 */
function readListeningLine(child, pattern, { firstLineOnly = false } = {}) {
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start within 60 s")), 60_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`server could not be started: ${error.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early with code ${code}`));
    });
    let found = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (found) return;
      const match = pattern.exec(line.trim());
      if (match) {
        found = true;
        clearTimeout(timer);
        resolveUrl(match[1]);
      } else if (firstLineOnly) {
        found = true;
        clearTimeout(timer);
        reject(new Error(`unexpected stdout line before the address: ${JSON.stringify(line)}`));
      }
    });
  });
}
