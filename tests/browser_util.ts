// Helpers for the browser test's broadcast steps: a redis-server that can
// keep its data across a restart (AOF in a directory of its own), and the
// demo run as a real process with `--redis`, its log read as it comes.
import { delay } from "./util.ts";

/** Resolves with `promise`, or rejects after `ms` milliseconds. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A redis-server on a fixed free loopback port, started and stopped at will.
 * `start(dir)` keeps its data as an append-only file in `dir`: stopped with
 * SIGTERM (a clean shutdown) and started again on the same `dir`, it comes
 * back with its stream; started on a new empty `dir`, it comes back empty.
 */
export class PersistentRedis {
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

  /** Starts redis-server with `--appendonly yes --dir dir`; resolves once it accepts. */
  async start(dir: string): Promise<void> {
    if (this.#process !== undefined) throw new Error("redis-server is running");
    this.#process = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--save",
        "",
      ],
      stdin: "null",
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
   * Stops it: SIGTERM is a clean shutdown that writes out the AOF; SIGKILL
   * is a crash. Waits at most 5 s for a clean exit, then kills.
   */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
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

/** The demo as a process of its own, `deno run -A demo.ts --redis URL`. */
export interface DemoProcess {
  /** `http://127.0.0.1:PORT`, from the banner. */
  origin: string;
  /** The log lines (stderr) so far. */
  logs: string[];
  /** The first log line matching `pattern`, waiting at most `ms`. */
  logged(pattern: RegExp, ms?: number): Promise<string>;
  /** Ctrl-C, then its exit code (SIGKILL after 5 s); the full log. */
  stop(): Promise<{ code: number; log: string }>;
}

/** Starts the demo on a free port with `--redis url`; resolves once it listens. */
export async function startDemoProcess(url: string): Promise<DemoProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../demo.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--redis",
      url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  const stderr = (async () => {
    let rest = "";
    for await (
      const text of child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      logs.push(...lines);
    }
    if (rest !== "") logs.push(rest);
  })();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let banner = "";
  const readBanner = async () => {
    while (!banner.includes("Press Ctrl-C")) {
      const { value, done } = await stdout.read();
      if (done) throw new Error(`The demo exited:\n${logs.join("\n")}`);
      banner += value;
    }
  };
  try {
    await within(readBanner(), 15_000, "the demo's banner");
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    await stdout.cancel();
    await stderr;
    throw error;
  }
  const stdoutDone = (async () => {
    while (!(await stdout.read()).done);
  })();
  const origin = banner.match(/page: +(http:\/\/[^/]+)\//)![1];
  return {
    origin,
    logs,
    async logged(pattern, ms = 5000) {
      for (let waited = 0; waited < ms; waited += 20) {
        const line = logs.find((line) => pattern.test(line));
        if (line !== undefined) return line;
        await delay(20);
      }
      throw new Error(`No log line matches ${pattern}:\n${logs.join("\n")}`);
    },
    async stop() {
      child.kill("SIGINT");
      let status: Deno.CommandStatus;
      try {
        status = await within(child.status, 5000, "the demo's exit on SIGINT");
      } catch {
        child.kill("SIGKILL");
        status = await child.status;
      }
      await stdoutDone;
      await stderr;
      return { code: status.code, log: logs.join("\n") };
    },
  };
}
