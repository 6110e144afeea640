// Starts a server binary of this workspace on a free loopback port and returns its base URL.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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
 * Starts the showcase with a fresh database and resolves once it prints its address.
 * Returns `{ url, stop }`; `stop()` kills the process and removes the database.
 */
export async function startShowcase() {
  const dir = mkdtempSync(join(tmpdir(), "showcase-e2e-"));
  const child = spawn(
    binaryPath("showcase"),
    ["--addr", "127.0.0.1:0", "--database", join(dir, "showcase.db")],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let url;
  try {
    url = await readListeningLine(child, /^listening on (http:\/\/\S+)$/);
  } catch (error) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((done) => child.once("exit", done));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readListeningLine(child, pattern) {
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start within 60 s")), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early with code ${code}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = pattern.exec(line.trim());
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
  });
}
