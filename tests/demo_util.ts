// Helpers for the demo's tests: the demo served on an ephemeral loopback port
// with its log captured, and a way to cut a stream as a network would.
import {
  createDemo,
  type Demo,
  type DemoOptions,
  type LogLevel,
} from "../demo.ts";
import { delay, within, withServer } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

/** What a test gets: the demo, its base URL and the log lines so far. */
export interface DemoContext {
  demo: Demo;
  url: URL;
  logs: string[];
  /** Resolves with the first log line matching `pattern` (at most 2 s). */
  logged(pattern: RegExp): Promise<string>;
}

/**
 * Serves a new demo on 127.0.0.1 port 0 for the length of `fn`; `wrap` may
 * stand between the server and the demo's handler. Ends the demo's streams
 * before the server shuts down.
 */
export async function withDemo(
  fn: (context: DemoContext) => Promise<void>,
  options: {
    logLevel?: LogLevel;
    wrap?: (handler: Deno.ServeHandler) => Deno.ServeHandler;
    backplane?: DemoOptions["backplane"];
    keepAlive?: number;
  } = {},
): Promise<void> {
  const logs: string[] = [];
  const demo = createDemo({
    logLevel: options.logLevel ?? "info",
    log: (line) => logs.push(line),
    backplane: options.backplane,
    keepAlive: options.keepAlive,
  });
  const handler = options.wrap?.(demo.handler) ?? demo.handler;
  await withServer(handler, async (url) => {
    try {
      await fn({
        demo,
        url,
        logs,
        async logged(pattern) {
          for (let waited = 0; waited < 2000; waited += 10) {
            const line = logs.find((line) => pattern.test(line));
            if (line !== undefined) return line;
            await delay(10);
          }
          throw new Error(
            `No log line matches ${pattern}:\n${logs.join("\n")}`,
          );
        },
      });
    } finally {
      demo.shutdown();
    }
  });
}

/**
 * Passes `response` on until the event with `id: lastId` has gone through,
 * then ends the body as a dropped connection would and cancels the original
 * stream (which the server sees as the client leaving). Relies on SseWriter
 * sending whole events in each chunk.
 */
export function cutAfterId(response: Response, lastId: number): Response {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const marker = `\nid: ${lastId}\n`;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) return controller.close();
      const text = decoder.decode(value);
      const at = text.indexOf(marker);
      if (at === -1) return controller.enqueue(value);
      const end = text.indexOf("\n\n", at) + 2;
      controller.enqueue(encoder.encode(text.slice(0, end)));
      controller.close();
      await reader.cancel();
    },
    cancel: () => reader.cancel(),
  });
  return new Response(body, response);
}

/** Wraps a handler so that the first `/sse` stream is cut after `lastId`. */
export function cutFirstStream(
  lastId: number,
): (handler: Deno.ServeHandler) => Deno.ServeHandler {
  let cut = false;
  return (handler) => async (request, info) => {
    const response = await handler(request, info);
    if (cut || new URL(request.url).pathname !== "/sse") return response;
    cut = true;
    return cutAfterId(response, lastId);
  };
}

/** An ISO 8601 time with milliseconds, as the demo sends. */
export const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Replaces every `serverTime` and `timestamp` value with `"T"`. */
export function maskTimes(text: string): string {
  return text.replace(
    /"(serverTime|timestamp)":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/g,
    '"$1":"T"',
  );
}

/**
 * How late each tick that `reader` received arrived after the demo wrote
 * it: its arrival less its `timestamp`, in ms (the demo and the test share
 * the machine's clock). A stream held back by a proxy, a compressor or a
 * buffer shows it: its first ticks arrive as late as the last was written.
 */
export function tickDelays(reader: StreamReader): number[] {
  return reader.events.flatMap((event, i) =>
    event.event === "tick"
      ? [reader.arrivals[i] - Date.parse(JSON.parse(event.data).timestamp)]
      : []
  );
}

/**
 * Checks that every tick of a stream of `count` ticks `intervalMs` apart
 * arrived, each within `bound` ms of being written: one by one, not at the
 * end (which would make the first one `(count - 1) * intervalMs` late).
 */
export function assertOneByOne(
  reader: StreamReader,
  count: number,
  intervalMs: number,
  bound = intervalMs * 0.8,
): void {
  const delays = tickDelays(reader);
  const shown = `delays (ms): ${delays.join(", ")}`;
  if (bound >= (count - 1) * intervalMs) {
    throw new RangeError(`a bound of ${bound} ms cannot tell; ${shown}`);
  }
  if (delays.length !== count) {
    throw new Error(`${delays.length} of ${count} ticks arrived; ${shown}`);
  }
  for (const delay of delays) {
    // A millisecond either way: the two clocks are read at different moments.
    if (delay < -1 || delay > bound) {
      throw new Error(
        `a tick arrived ${delay} ms after it was written (bound ${bound} ms); ${shown}`,
      );
    }
  }
}

/** The demo as a process of its own: `deno run -A demo.ts --port 0 …`. */
export interface DemoProcess {
  /** `http://127.0.0.1:PORT` (or `https:`), from the banner. */
  origin: string;
  /** The log lines (stderr) so far. */
  logs: string[];
  /** The first log line matching `pattern`, waiting at most `ms`. */
  logged(pattern: RegExp, ms?: number): Promise<string>;
  /** Ctrl-C, then its exit code (SIGKILL after 5 s); the full log. */
  stop(): Promise<{ code: number; log: string }>;
}

/** Starts the demo on a free port with `args`; resolves once it listens. */
export async function startDemoProcess(
  args: string[] = [],
): Promise<DemoProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../demo.ts", import.meta.url).pathname,
      "--port",
      "0",
      ...args,
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
  const stdout = new StreamReader(child.stdout);
  const readBanner = async () => {
    if (!await stdout.waitFor(() => stdout.text.includes("Press Ctrl-C"))) {
      throw new Error(`The demo exited:\n${logs.join("\n")}`);
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
  const stdoutDone = stdout.rest();
  const origin = stdout.text.match(/page: +(https?:\/\/[^/]+)\//)![1];
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
