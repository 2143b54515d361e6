/**
 * {@linkcode RedisBackplane}: shares an {@linkcode SseChannel} between
 * servers through a capped Redis Stream, using a Redis client you already
 * have. Nothing is imported: any client with a `sendCommand(args)` method
 * fits (`npm:redis` as it is; wrap `ioredis` as
 * `{ sendCommand: (args) => redis.call(args[0], ...args.slice(1)) }`).
 *
 * **Why a stream, not pub/sub.** Pub/sub forgets what is published while an
 * instance is disconnected. A stream (`XADD … MAXLEN ~`) keeps the recent
 * past: an instance that loses its connection reads on from its last entry
 * when it is back, and only what the cap or a Redis restart dropped is lost.
 * Every instance numbers its own events, so each instance sees such a loss
 * as a gap in a sender's numbers and sends its clients `event: reset`; it is
 * never silent.
 *
 * **Order.** Every instance delivers its own events at once, and the others'
 * as it reads them, so that a Redis outage never stops local clients. Each
 * sender's events arrive in the order sent on every instance; events sent at
 * the same moment by two instances may reach two instances' clients in
 * either order. Event ids name, for each sender, the last event seen, so a
 * client resumes on any instance without gap or duplicate all the same.
 *
 * @example Two instances behind a load balancer, sharing "news"
 * ```ts ignore
 * import { SseChannel } from "@ssekit/sse";
 * import { RedisBackplane } from "@ssekit/sse/redis";
 *
 * // `client`: your connected Redis client (npm's `redis`, say);
 * // `reader`: a second connection, which XREAD BLOCK holds while it waits.
 * const reader = await client.duplicate().connect();
 * const news = new SseChannel({
 *   backplane: new RedisBackplane({ client, reader, stream: "news" }),
 * });
 * ```
 *
 * @module
 */

import type { SseBackplane, SseBackplaneMessage } from "./channel.ts";

/** The one method of a Redis client that the backplane uses. */
export interface RedisCommands {
  /** Sends one command, as its words, and resolves with Redis's reply. */
  sendCommand(args: string[]): Promise<unknown>;
}

/** Options for {@linkcode RedisBackplane}. */
export interface RedisBackplaneOptions {
  /** A connected client, for `XADD`. */
  client: RedisCommands;
  /**
   * A second connected client, for `XREAD BLOCK` only, which holds its
   * connection while it waits. Destroy it after closing the channel.
   */
  reader: RedisCommands;
  /**
   * The Redis key of the stream; every instance of one channel uses the same.
   *
   * @default {"ssekit"}
   */
  stream?: string;
  /**
   * About how many entries the stream keeps (`XADD … MAXLEN ~`): what an
   * instance can catch up on after it loses its connection.
   *
   * @default {10000}
   */
  maxLen?: number;
  /**
   * How long one `XREAD` waits for new entries, in milliseconds.
   *
   * @default {5000}
   */
  blockMs?: number;
  /**
   * How long to wait before trying again after Redis failed, in milliseconds.
   *
   * @default {500}
   */
  retryMs?: number;
  /**
   * How many events may wait to be published while Redis is unreachable;
   * beyond that the oldest are dropped (and the other instances reset their
   * clients when they notice).
   *
   * @default {10000}
   */
  maxPending?: number;
  /**
   * Told of every failed Redis command; the backplane keeps trying.
   *
   * @default {console.error}
   */
  onError?: (error: unknown) => void;
}

function checkCount(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(
      `Cannot create RedisBackplane: \`${name}\` must be a positive integer, got ${
        String(value)
      }`,
    );
  }
  return value as number;
}

/** Reads a stream entry's field list, `[name, value, name, value, …]`. */
function toMessage(fields: unknown): SseBackplaneMessage | undefined {
  if (!Array.isArray(fields)) return undefined;
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    entry[String(fields[i])] = String(fields[i + 1]);
  }
  const seq = Number(entry.seq);
  if (!entry.origin || !Number.isSafeInteger(seq) || entry.body === undefined) {
    return undefined;
  }
  return { origin: entry.origin, seq, body: entry.body, topic: entry.topic };
}

/**
 * An {@linkcode SseBackplane} on a capped Redis Stream: see the module
 * documentation for what it guarantees and why.
 *
 * @example
 * ```ts ignore
 * const backplane = new RedisBackplane({ client, reader, stream: "news" });
 * const channel = new SseChannel({ backplane });
 * // … on shutdown:
 * channel.close(); // closes the backplane too
 * await reader.destroy(); // ends the XREAD that is waiting
 * await backplane.finished;
 * ```
 */
export class RedisBackplane implements SseBackplane {
  /** Resolves once `close()` was called and no command is under way. */
  readonly finished: Promise<void>;
  #client: RedisCommands;
  #reader: RedisCommands;
  #stream: string;
  #maxLen: string;
  #blockMs: string;
  #retryMs: number;
  #maxPending: number;
  #onError: (error: unknown) => void;
  #pending: SseBackplaneMessage[] = [];
  #publishing: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  #closed = false;
  /** Ends the waits of `#pause()` at once, on close. */
  #wakes = new Set<() => void>();
  #finish!: () => void;

  /** Creates the backplane; nothing is sent until a channel uses it. */
  constructor(options: RedisBackplaneOptions) {
    for (const name of ["client", "reader"] as const) {
      if (typeof options?.[name]?.sendCommand !== "function") {
        throw new TypeError(
          `Cannot create RedisBackplane: \`${name}\` must have a sendCommand(args) method`,
        );
      }
    }
    this.#client = options.client;
    this.#reader = options.reader;
    this.#stream = options.stream ?? "ssekit";
    this.#maxLen = String(checkCount("maxLen", options.maxLen, 10_000));
    this.#blockMs = String(checkCount("blockMs", options.blockMs, 5000));
    this.#retryMs = checkCount("retryMs", options.retryMs, 500);
    this.#maxPending = checkCount("maxPending", options.maxPending, 10_000);
    this.#onError = options.onError ?? console.error;
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  /** Appends `message` to the stream, retrying while Redis is unreachable. */
  publish(message: SseBackplaneMessage): void {
    if (this.#closed) return;
    this.#pending.push(message);
    if (this.#pending.length > this.#maxPending) this.#pending.shift();
    this.#publishing ??= this.#publishPending();
  }

  /** Reads the other instances' events from the stream, from now on. */
  subscribe(listener: (message: SseBackplaneMessage) => void): void {
    if (this.#reading) {
      throw new TypeError("Cannot subscribe: the backplane has a listener");
    }
    this.#reading = this.#read(listener);
  }

  /** Stops publishing and reading; see `finished`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    for (const wake of this.#wakes) wake();
    Promise.all([this.#publishing, this.#reading]).then(() => this.#finish());
  }

  async #publishPending(): Promise<void> {
    while (this.#pending.length > 0 && !this.#closed) {
      // Sent together, they share round trips; a retry after a failure may
      // repeat some, which the channels ignore as duplicates.
      const batch = this.#pending;
      this.#pending = [];
      try {
        await Promise.all(
          batch.map(({ origin, seq, body, topic }) =>
            this.#client.sendCommand([
              "XADD",
              this.#stream,
              "MAXLEN",
              "~",
              this.#maxLen,
              "*",
              "origin",
              origin,
              "seq",
              String(seq),
              "body",
              body,
              ...(topic === undefined ? [] : ["topic", topic]),
            ])
          ),
        );
      } catch (error) {
        if (this.#closed) break;
        this.#pending = [...batch, ...this.#pending].slice(-this.#maxPending);
        this.#onError(error);
        await this.#pause();
      }
    }
    this.#publishing = undefined;
  }

  async #read(listener: (message: SseBackplaneMessage) => void) {
    let last: string | undefined;
    while (!this.#closed) {
      try {
        if (last === undefined) {
          // Start after the newest entry: what came before is history.
          const newest = await this.#reader.sendCommand(
            ["XREVRANGE", this.#stream, "+", "-", "COUNT", "1"],
          ) as [string, unknown][];
          last = newest?.[0]?.[0] ?? "0-0";
          continue;
        }
        const reply = await this.#reader.sendCommand([
          "XREAD",
          "BLOCK",
          this.#blockMs,
          "COUNT",
          "1000",
          "STREAMS",
          this.#stream,
          last,
        ]) as [string, [string, unknown][]][] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          last = id;
          const message = toMessage(fields);
          if (message && !this.#closed) listener(message);
        }
      } catch (error) {
        if (this.#closed) break;
        this.#onError(error);
        await this.#pause();
      }
    }
  }

  /** Waits `retryMs`, or less if the backplane closes meanwhile. */
  #pause(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakes.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, this.#retryMs);
      this.#wakes.add(wake);
    });
  }
}
