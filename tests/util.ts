// Helpers shared by the tests: a real server on an ephemeral loopback port,
// timers that leave nothing behind, and a client of a channel in process.
import type { EventSourceMessage } from "eventsource-parser";
import type { SseChannel } from "../mod.ts";
import { StreamReader } from "./stream_reader.ts";

/** Serves `handler` on 127.0.0.1 for the length of `fn`, then shuts down. */
export async function withServer(
  handler: Deno.ServeHandler,
  fn: (url: URL) => Promise<void>,
): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  try {
    await fn(new URL(`http://127.0.0.1:${server.addr.port}/`));
  } finally {
    await server.shutdown();
  }
}

/** A loopback port that is free now, for a server that must come back on it. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A timer that can be cancelled, for bounding a wait without a leak. */
export function deadline(
  ms: number,
): { reached: Promise<"deadline">; cancel(): void } {
  let timer: ReturnType<typeof setTimeout>;
  let settle: (value: "deadline") => void;
  const reached = new Promise<"deadline">((resolve) => {
    settle = resolve;
    timer = setTimeout(() => resolve("deadline"), ms);
  });
  return {
    reached,
    cancel() {
      clearTimeout(timer);
      settle("deadline");
    },
  };
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/**
 * A client of one channel, its stream parsed as it arrives. `lastId()` is
 * what EventSource would send back as `Last-Event-ID`: the last id field,
 * also of a block without data.
 */
export function listen(channel: SseChannel, last?: string, topics?: string[]): {
  events: EventSourceMessage[];
  done: Promise<void>;
  raw(): string;
  lastId(): string | undefined;
  leave(): Promise<void>;
} {
  const headers: HeadersInit = last === undefined
    ? {}
    : { "last-event-id": last };
  const request = new Request("http://x/", { headers });
  const reader = new StreamReader(channel.connect(request, { topics }).body!);
  const done = reader.follow().then(() => {});
  return {
    events: reader.events,
    done,
    raw: () => reader.text,
    lastId: () => reader.lastId(),
    async leave() {
      await delay(0); // take what was sent
      await reader.cancel();
      await done;
    },
  };
}

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

/** Under CI=true a test that needs a missing tool fails instead of skipping. */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

/**
 * For a test that needs external tools: `ignore` is true (and a warning
 * says so) where one is missing, except under CI=true, where `check()`
 * then fails the test, naming what is missing and how to install it.
 */
export function needs(
  what: string,
  tools: Record<string, boolean>,
  install: string,
): { ignore: boolean; check(): void } {
  const missing = Object.keys(tools).filter((tool) => !tools[tool]);
  if (missing.length > 0 && !IN_CI) {
    console.warn(
      `Skipping ${what}: no ${
        missing.join(", ")
      } (${install}). Under CI=true it fails instead.`,
    );
  }
  return {
    ignore: missing.length > 0 && !IN_CI,
    check() {
      if (missing.length > 0) {
        throw new Error(
          `CI needs ${missing.join(", ")} for ${what}: ${install}`,
        );
      }
    },
  };
}
