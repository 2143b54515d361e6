// A redis-server of a test's own, on a free loopback port, without
// persistence; and redisTest(), which skips a test where there is none
// (and fails it under CI=true).
import assert from "node:assert/strict";
import { delay } from "./util.ts";

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

/** A redis-server on a free loopback port, without persistence. */
export class Redis {
  readonly port: number;
  #process?: Deno.ChildProcess;

  constructor() {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = probe.addr.port;
    probe.close();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#process = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
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

  async stop(): Promise<void> {
    this.#process?.kill("SIGKILL");
    await this.#process?.status;
    this.#process = undefined;
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
