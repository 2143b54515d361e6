// A redis-server of a test's own, on a free loopback port, without
// persistence; and redisTest(), which skips a test where there is none
// (and fails it under CI=true).
import assert from "node:assert/strict";
import { delay, freePort, within } from "./util.ts";

export const found = await new Deno.Command("redis-server", {
  args: ["--version"],
})
  .output().then((out) => out.success).catch(() => false);
const IN_CI = Deno.env.get("CI") === "true";
if (!found && !IN_CI) {
  console.warn(
    "Skipping the Redis tests: no redis-server on PATH (Debian: apt-get " +
      "install redis-server). Under CI=true they fail instead.",
  );
}

/**
 * A redis-server on a free loopback port, started and stopped at will.
 * Without persistence; or, started with a `dir`, keeping its data there as
 * an append-only file: stopped with SIGTERM (a clean shutdown) and started
 * again on the same `dir`, it comes back with its streams.
 */
export class Redis {
  readonly port: number = freePort();
  #process?: Deno.ChildProcess;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(options: { dir?: string } = {}): Promise<void> {
    if (this.#process !== undefined) throw new Error("redis-server is running");
    const { dir } = options;
    this.#process = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        ...(dir === undefined
          ? ["--appendonly", "no"]
          : ["--appendonly", "yes", "--dir", dir]),
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port }))
          .close();
        return;
      } catch {
        await delay(25);
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /**
   * Stops it: SIGKILL is a crash; SIGTERM a clean shutdown, which writes out
   * the append-only file (waited for at most 5 s, then killed).
   */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGKILL"): Promise<void> {
    const process = this.#process;
    if (process === undefined) return;
    this.#process = undefined;
    process.kill(signal);
    try {
      await within(process.status, 5000, `redis-server on ${signal}`);
    } catch (error) {
      process.kill("SIGKILL");
      await process.status;
      throw error;
    }
  }
}

/** A test with a redis-server of its own; skipped (failed, under CI) without. */
export function redisTest(
  name: string,
  fn: (redis: Redis, t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: !found && !IN_CI,
    async fn(t) {
      assert.ok(found, "CI needs redis-server: .ci/run installs it with apt");
      const redis = new Redis();
      await redis.start();
      try {
        await fn(redis, t);
      } finally {
        await redis.stop();
      }
    },
  });
}
