// Starts Debian's redis-server on a free loopback port for one test file.
import { spawn, spawnSync } from "node:child_process";
import { createConnection, createServer } from "node:net";

import { sleep } from "./hub.mjs";

/** A free port on 127.0.0.1 (the kernel's pick for port 0, released again). */
async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** Whether something accepts TCP connections on the port. */
function accepting(port) {
  return new Promise((done) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/**
 * Starts redis-server and resolves with `{ url, stop, restart }` once it accepts connections.
 * `stop()` ends the process and waits until the port is closed; `restart()` starts it again
 * on the same port. Fails clearly when redis-server is not installed (the test command
 * installs Debian's redis-server package).
 */
export async function startRedis() {
  if (spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) {
    throw new Error("redis-server is not installed: install Debian's redis-server package (./scripts/test does)");
  }
  const port = await freePort();
  let child;
  const launch = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    for (let waited = 0; !(await accepting(port)); waited += 50) {
      if (waited > 10_000) throw new Error(`redis-server did not start on port ${port}`);
      await sleep(50);
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
    }
    while (await accepting(port)) await sleep(50);
  };
  await launch();
  return { url: `redis://127.0.0.1:${port}`, stop, restart: launch };
}
