/**
 * {@linkcode RedisBackplane}: shares an {@linkcode SseChannel} between
 * servers through a capped Redis Stream, in one order, using a Redis client
 * you already have. Nothing is imported: any client with a
 * `sendCommand(args)` method fits (`npm:redis` as it is; wrap `ioredis` as
 * `{ sendCommand: (args) => redis.call(args[0], ...args.slice(1)) }`).
 *
 * **One order.** Every event goes into the stream first, and every instance,
 * the sender included, delivers the stream's entries in the stream's order.
 * So every client of every instance sees the same sequence, and an event's
 * id is its stream entry id (`1733050000000-0`), the same on every instance
 * and comparable. A client resumes on any instance: from that instance's
 * history, which starts with the stream's recent past (so a server started
 * after a deploy resumes the clients of the one it replaced), or, on an
 * instance that has not yet read as far as the client's id, from the first
 * entry after it.
 *
 * **Why a stream, not pub/sub.** Pub/sub has no order across publishers that
 * all subscribers agree on, no ids and no past: what is published while an
 * instance reconnects is gone. A stream (`XADD … MAXLEN ~`, read with
 * `XREAD BLOCK`, its recent past with `XREVRANGE`) gives the order, the ids
 * and the shared history in one mechanism.
 *
 * **Nothing lost silently.** Each entry also carries its count in the stream
 * (1, 2, 3, …, set by a short Lua script as it is appended), so an instance
 * that misses entries sees a gap, and a Redis that restarted without them
 * sees the count go back; either way the channel sends its clients
 * `event: reset`. A publish that Redis did not confirm is tried again, and
 * the retry finds the first try if it was appended, so every event is in the
 * stream once.
 *
 * **While Redis is away**, clients stay connected and can reconnect and
 * resume from the instances' histories; events published meanwhile wait (up
 * to `maxPending`) and are ordered and delivered when Redis is back. Their
 * `publish()` promises resolve then, or reject if they were dropped, or
 * withdrawn by their `signal` before they were sent: after a failure, events
 * are sent again only once Redis answers, so those that wait can always be
 * withdrawn. `state` tells whether Redis answers, and a `statechange` event
 * each change, so that an app can show it.
 *
 * **A Redis that restarts without its data** (no AOF, no RDB saved) is a
 * loss: what others appended in the moment before it went down may be gone,
 * and no instance can rule that out. Each instance then sends its clients
 * `event: reset`, and no later resume crosses that point.
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
 * await news.publish({ event: "headline", data: "…" }); // "1733050000000-0"
 * ```
 *
 * @module
 */

import type {
  SseOrderedBackplane,
  SseOrderedEntry,
  SseOrderedPublishOptions,
  SseOrderedReceiver,
} from "./backplane.ts";
import { SseClosedError } from "./sse.ts";
import { checkInteger, describe } from "./_validate.ts";
import { withResolvers } from "./_promise.ts";

/** The one method of a Redis client that the backplane uses. */
export interface RedisCommands {
  /** Sends one command, as its words, and resolves with Redis's reply. */
  sendCommand(args: string[]): Promise<unknown>;
}

/** Options for {@linkcode RedisBackplane}. */
export interface RedisBackplaneOptions {
  /** A connected client, for appending to the stream. */
  client: RedisCommands;
  /**
   * A second connected client, for reading the stream, whose `XREAD BLOCK`
   * holds its connection while it waits. Destroy it after closing the
   * channel.
   */
  reader: RedisCommands;
  /**
   * The Redis key of the stream; every instance of one channel uses the same,
   * and nothing else writes to it.
   *
   * @default {"ssekit"}
   */
  stream?: string;
  /**
   * About how many entries the stream keeps (`XADD … MAXLEN ~`): how far an
   * instance that lost its connection can catch up. At least the channels'
   * `historySize`, so that a new instance can fill its history.
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
   * beyond that the oldest are dropped, and their `publish()` promises
   * reject. No client has seen them, so nothing is missing.
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

/**
 * Appends an event with its count, one more than the last entry's (1 in a
 * new stream), and returns its id. Atomic, so the counts have no gap unless
 * entries are lost. On a retry it first looks back to the sender's previous
 * entry: if the first try was appended, it returns that entry's id instead.
 * KEYS[1]: the stream. ARGV: MAXLEN, "1" on a retry, origin, seq, body, and
 * the topic if any.
 */
const APPEND = `local function field(entry, name)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
end
local stream, origin, seq = KEYS[1], ARGV[3], tonumber(ARGV[4])
if ARGV[2] == '1' then
  local from = '+'
  while from do
    local entries = redis.call('XREVRANGE', stream, from, '-', 'COUNT', 100)
    from = entries[100] and '(' .. entries[100][1]
    for _, entry in ipairs(entries) do
      if field(entry, 'origin') == origin then
        local s = tonumber(field(entry, 'seq'))
        if s == seq then return entry[1] end
        if s < seq then from = nil break end
      end
    end
  end
end
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
local n = last and tonumber(field(last, 'n') or 0) + 1 or 1
local fields = {'n', n, 'origin', origin, 'seq', ARGV[4], 'body', ARGV[5]}
if ARGV[6] then
  fields[9] = 'topic'
  fields[10] = ARGV[6]
end
return redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', unpack(fields))`;

/** A stream entry id: milliseconds and a sequence, without leading zeros. */
const POSITION = /^(0|[1-9]\d*)-(0|[1-9]\d*)$/;
const RESTARTED = "Redis lost events: it restarted or failed over";

/** An append that was never sent: loading the script failed first. */
class NotSent extends Error {
  constructor(cause: unknown) {
    super("Cannot publish event: Redis did not answer", { cause });
  }
}

function closedFirst(): SseClosedError {
  return new SseClosedError("Cannot publish event: the backplane closed first");
}

/**
 * Whether the backplane reaches Redis: `"connecting"` until a command first
 * succeeds, then `"connected"`, or `"unreachable"` from a failed command to
 * the next that succeeds.
 */
export type RedisBackplaneState = "connecting" | "connected" | "unreachable";

interface Pending {
  seq: number;
  /** Whether an append was sent and may have happened. */
  tried: boolean;
  body: string;
  topic: string | undefined;
  signal: AbortSignal | undefined;
  resolve: (position: string) => void;
  reject: (error: unknown) => void;
}

interface Message {
  /** The entry's count in the stream. */
  n: number;
  entry: SseOrderedEntry;
}

const CREATE = "Cannot create RedisBackplane";

function checkCount(name: string, value: unknown, fallback: number): number {
  return value === undefined
    ? fallback
    : checkInteger(CREATE, name, value, { min: 1 });
}

/** Reads a stream entry `[id, [name, value, …]]`; undefined if not ours. */
function toMessage(raw: unknown): Message | undefined {
  if (!Array.isArray(raw) || !Array.isArray(raw[1])) return undefined;
  const [id, fields] = raw as [unknown, unknown[]];
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    entry[String(fields[i])] = String(fields[i + 1]);
  }
  const n = Number(entry.n);
  if (!Number.isSafeInteger(n) || entry.body === undefined) return undefined;
  return {
    n,
    entry: { position: String(id), body: entry.body, topic: entry.topic },
  };
}

/** The entries of an `XREAD` reply for one stream. */
function entriesOf(reply: unknown): unknown[] {
  const streams = Array.isArray(reply) ? reply : [];
  const entries = Array.isArray(streams[0]) ? streams[0][1] : undefined;
  return Array.isArray(entries) ? entries : [];
}

/**
 * An {@linkcode SseOrderedBackplane} on a capped Redis Stream: see the module
 * documentation for what it guarantees and why.
 *
 * @example
 * ```ts ignore
 * const backplane = new RedisBackplane({ client, reader, stream: "news" });
 * const channel = new SseChannel({ backplane });
 * await channel.ready; // it has read the stream's recent past
 * // … on shutdown:
 * channel.close(); // closes the backplane too
 * await reader.destroy(); // ends the XREAD that is waiting
 * await backplane.finished;
 * ```
 */
export class RedisBackplane extends EventTarget implements SseOrderedBackplane {
  /** Marks the backplane as ordered. */
  readonly ordered: true = true;
  /** Resolves once `close()` was called and no command is under way. */
  readonly finished: Promise<void>;
  #client: RedisCommands;
  #reader: RedisCommands;
  #stream: string;
  #maxLen: string;
  #count: string;
  #blockMs: string;
  #retryMs: number;
  #maxPending: number;
  #onError: (error: unknown) => void;
  /** Names this instance's entries, so that a retry finds its first try. */
  #origin = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  #seq = 0;
  /** The SHA1 of `APPEND` once Redis has it (`SCRIPT LOAD`). */
  #script: string | undefined;
  #pending: Pending[] = [];
  /** True from a failed append to the next that works: `maxPending` holds. */
  #failing = false;
  #state: RedisBackplaneState = "connecting";
  #publishing: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  /** Resolves once the reader knows where the order starts (or on close). */
  #started = withResolvers<void>();
  #closed = false;
  /** Ends the waits of `#pause()` at once, on close. */
  #wakes = new Set<() => void>();
  #finished = withResolvers<void>();

  /** Creates the backplane; it starts when a channel subscribes. */
  constructor(options: RedisBackplaneOptions) {
    super();
    for (const name of ["client", "reader"] as const) {
      if (typeof options?.[name]?.sendCommand !== "function") {
        throw new TypeError(
          `${CREATE}: \`${name}\` must have a sendCommand(args) method`,
        );
      }
    }
    if (options.stream !== undefined && typeof options.stream !== "string") {
      throw new TypeError(
        `${CREATE}: \`stream\` must be a string, got ${
          describe(options.stream)
        }`,
      );
    }
    this.#client = options.client;
    this.#reader = options.reader;
    this.#stream = options.stream || "ssekit";
    const maxLen = checkCount("maxLen", options.maxLen, 10_000);
    this.#maxLen = String(maxLen);
    this.#count = String(Math.min(1000, maxLen));
    this.#blockMs = String(checkCount("blockMs", options.blockMs, 5000));
    this.#retryMs = checkCount("retryMs", options.retryMs, 500);
    this.#maxPending = checkCount("maxPending", options.maxPending, 10_000);
    this.#onError = options.onError ?? console.error;
    this.finished = this.#finished.promise;
  }

  /**
   * Whether Redis answers, as the last command found; a `statechange` event
   * is dispatched on the backplane whenever it changes.
   *
   * @example Tell the operator when Redis goes away and comes back
   * ```ts ignore
   * backplane.addEventListener("statechange", () => {
   *   console.warn(`redis: ${backplane.state}`);
   * });
   * ```
   */
  get state(): RedisBackplaneState {
    return this.#state;
  }

  /**
   * Appends an event to the stream and resolves with its entry id. While
   * Redis is unreachable the event waits, up to `maxPending` of them; if
   * `options.signal` aborts meanwhile, it is withdrawn and the promise
   * rejects with the signal's reason. An event that was sent to Redis,
   * whose outcome is not known yet, is not withdrawn: its promise settles
   * with what Redis did.
   */
  publish(
    body: string,
    options: SseOrderedPublishOptions = {},
  ): Promise<string> {
    const { topic, signal } = options;
    if (this.#closed) {
      return Promise.reject(
        new SseClosedError("Cannot publish event: the backplane is closed"),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = withResolvers<string>();
    const withdraw = () => {
      const at = this.#pending.indexOf(message);
      if (at !== -1 && !message.tried) {
        this.#pending.splice(at, 1);
        message.reject(signal!.reason);
      }
    };
    const message: Pending = {
      seq: ++this.#seq,
      tried: false,
      body,
      topic,
      signal,
      resolve(position) {
        signal?.removeEventListener("abort", withdraw);
        resolve(position);
      },
      reject(error) {
        signal?.removeEventListener("abort", withdraw);
        reject(error);
      },
    };
    signal?.addEventListener("abort", withdraw, { once: true });
    this.#pending.push(message);
    if (this.#failing) this.#dropOverflow();
    this.#publishing ??= this.#publishPending();
    return promise;
  }

  /** Reads the stream's recent past, then every later entry, in order. */
  subscribe(receiver: SseOrderedReceiver, history: number): void {
    if (this.#reading) {
      throw new TypeError("Cannot subscribe: the backplane has a receiver");
    }
    this.#reading = this.#read(receiver, history);
  }

  /** Orders two stream entry ids; `NaN` if either is not one. */
  compare(a: string, b: string): number {
    const x = POSITION.exec(a);
    const y = POSITION.exec(b);
    if (x === null || y === null) return NaN;
    for (const part of [1, 2]) {
      // Digits without leading zeros: the longer is larger, else by text.
      const [p, q] = [x[part], y[part]];
      if (p.length !== q.length) return p.length - q.length;
      if (p !== q) return p < q ? -1 : 1;
    }
    return 0;
  }

  /**
   * Stops publishing and reading; events not yet appended reject with
   * {@linkcode SseClosedError}. See `finished`.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedFirst();
    for (const { reject } of this.#pending.splice(0)) reject(error);
    this.#started.resolve();
    for (const wake of this.#wakes) wake();
    Promise.all([this.#publishing, this.#reading]).then(() =>
      this.#finished.resolve()
    );
  }

  #dropOverflow(): void {
    while (this.#pending.length > this.#maxPending) {
      this.#pending.shift()!.reject(
        new Error(
          `Cannot publish event: Redis stayed unreachable while more than \`maxPending\` (${this.#maxPending}) events waited`,
        ),
      );
    }
  }

  async #publishPending(): Promise<void> {
    // Appended only once the reader knows where the order starts, so that
    // the channel delivers them.
    await this.#started.promise;
    while (this.#pending.length > 0 && !this.#closed) {
      // Sent together, they share round trips and are appended in order.
      const batch = this.#pending;
      this.#pending = [];
      const results = await this.#append(batch);
      // A failed tail is sent again, in order; Redis may have appended some,
      // which the retry finds. A failure before a success cannot be, or it
      // would come after a later event: it is refused.
      let retry = batch.length;
      while (retry > 0 && results[retry - 1].status === "rejected") retry--;
      for (let i = 0; i < retry; i++) {
        const result = results[i];
        if (result.status === "fulfilled") {
          batch[i].resolve(String(result.value));
        } else {
          batch[i].reject(result.reason);
        }
      }
      if (retry === batch.length) {
        this.#failing = false;
        this.#setState("connected");
        continue;
      }
      const failed = batch.slice(retry);
      if (this.#closed) {
        const error = closedFirst();
        for (const { reject } of failed) reject(error);
        break;
      }
      const error = (results[retry] as PromiseRejectedResult).reason;
      const sent = !(error instanceof NotSent);
      for (const message of failed) message.tried ||= sent;
      // Aborted while under way, and not sent after all: withdrawn now.
      const kept = failed.filter((message) => {
        if (message.tried || !message.signal?.aborted) return true;
        message.reject(message.signal.reason);
        return false;
      });
      this.#pending = [...kept, ...this.#pending];
      this.#failing = true;
      this.#dropOverflow();
      this.#fail(sent ? error : error.cause);
      await this.#pause();
    }
    this.#publishing = undefined;
  }

  /**
   * Appends `batch` in order, pipelined; each outcome in the same place.
   * After a failure the script is loaded again first, which also tells
   * whether Redis answers before any event is sent: if it does not, every
   * outcome is a {@linkcode NotSent}, and those events can be withdrawn.
   */
  async #append(batch: Pending[]): Promise<PromiseSettledResult<unknown>[]> {
    try {
      this.#script ??= String(
        await this.#client.sendCommand(["SCRIPT", "LOAD", APPEND]),
      );
    } catch (cause) {
      const reason = new NotSent(cause);
      return batch.map(() => ({ status: "rejected", reason }));
    }
    const results = await Promise.allSettled(
      batch.map(({ seq, tried, body, topic }) =>
        this.#client.sendCommand([
          "EVALSHA",
          this.#script!,
          "1",
          this.#stream,
          this.#maxLen,
          tried ? "1" : "0",
          this.#origin,
          String(seq),
          body,
          ...(topic === undefined ? [] : [topic]),
        ])
      ),
    );
    return results;
  }

  /**
   * Reports a failed command. Redis is then unreachable, once it has been
   * reached: until the first command succeeds, the state stays `connecting`.
   */
  #fail(error: unknown): void {
    this.#onError(error);
    // The next append loads the script first: events are sent only once
    // Redis answers, so those that wait meanwhile can be withdrawn; and a
    // Redis that restarted has forgotten the script anyway (NOSCRIPT).
    this.#script = undefined;
    if (this.#state === "connected") this.#setState("unreachable");
  }

  #setState(state: RedisBackplaneState): void {
    if (this.#state === state || this.#closed) return;
    this.#state = state;
    this.dispatchEvent(new Event("statechange"));
  }

  async #read(receiver: SseOrderedReceiver, history: number): Promise<void> {
    /** The id of the last entry read; undefined until started. */
    let last: string | undefined;
    /** The count of the last entry read; undefined: take the next as it is. */
    let count: number | undefined;
    /** After a failure: whether Redis has lost entries not yet read. */
    let check = false;
    while (!this.#closed) {
      try {
        if (last === undefined) {
          const newest = await this.#reader.sendCommand([
            "XREVRANGE",
            this.#stream,
            "+",
            "-",
            "COUNT",
            String(history + 1),
          ]);
          this.#setState("connected");
          const raw = Array.isArray(newest) ? newest : [];
          const messages = raw.map(toMessage).filter((m) => m !== undefined)
            .reverse();
          // The past follows the entry before it, or the start of the stream
          // if it begins with the first entry ever appended.
          const from = messages[0]?.n === 1 ? undefined : messages.shift();
          const past = messages.map((m) => m.entry);
          last = raw.length > 0 ? String(raw[0][0]) : "0-0";
          count = (messages.at(-1) ?? from)?.n ?? 0;
          if (this.#closed) break;
          receiver.start(past, from?.entry.position ?? "0-0");
          this.#started.resolve();
          continue;
        }
        if (check) {
          const newest = await this.#reader.sendCommand(
            ["XREVRANGE", this.#stream, "+", "-", "COUNT", "1"],
          );
          check = false;
          this.#setState("connected");
          const top = toMessage(Array.isArray(newest) ? newest[0] : undefined);
          if (count !== undefined && (top?.n ?? 0) < count) {
            if (this.#closed) break;
            receiver.lost(RESTARTED);
            count = undefined;
          }
        }
        const reply = await this.#reader.sendCommand([
          "XREAD",
          "BLOCK",
          this.#blockMs,
          "COUNT",
          this.#count,
          "STREAMS",
          this.#stream,
          last,
        ]);
        this.#setState("connected");
        for (const raw of entriesOf(reply)) {
          if (this.#closed) break;
          if (Array.isArray(raw)) last = String(raw[0]);
          const message = toMessage(raw);
          if (message === undefined) continue;
          if (count !== undefined && message.n !== count + 1) {
            receiver.lost(
              message.n <= count
                ? RESTARTED
                : "events left the Redis stream before this server read them",
            );
          }
          count = message.n;
          receiver.entry(message.entry);
        }
      } catch (error) {
        if (this.#closed) break;
        this.#fail(error);
        check = last !== undefined;
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
