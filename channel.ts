/**
 * {@linkcode SseChannel}: one event to every connected client, with resume
 * from a bounded history, slow clients dropped before they cost memory, and a
 * {@linkcode SseBackplane} to share the channel between instances.
 *
 * @module
 */

import {
  encodeEvent,
  lastEventId,
  SseClosedError,
  type SseEvent,
  SseWriter,
  writerInternals,
} from "./sse.ts";

/**
 * An event on its way between the instances that share a channel: encoded
 * once by the instance that sent it, without an id (each instance adds its
 * own, see {@linkcode SseChannel}).
 */
export interface SseBackplaneMessage {
  /** The sending instance. */
  origin: string;
  /** The sender's sequence number: 1, 2, 3, … with no gap. */
  seq: number;
  /** The event's wire text without its `id:` line, as `encodeEvent` gives. */
  body: string;
  /** The topic it was sent to, if any. */
  topic?: string;
}

/**
 * Carries events between the instances that share a channel. `publish` must
 * deliver each message to every other instance, in the order each sender
 * published them; `subscribe` receives the others' messages (not one's own).
 *
 * @example A backplane within one process, for tests
 * ```ts
 * import type { SseBackplane, SseBackplaneMessage } from "./channel.ts";
 *
 * class LocalBackplane implements SseBackplane {
 *   static #all = new Set<LocalBackplane>();
 *   #listener?: (message: SseBackplaneMessage) => void;
 *   constructor() {
 *     LocalBackplane.#all.add(this);
 *   }
 *   publish(message: SseBackplaneMessage): void {
 *     for (const other of LocalBackplane.#all) {
 *       if (other !== this) other.#listener?.(message);
 *     }
 *   }
 *   subscribe(listener: (message: SseBackplaneMessage) => void): void {
 *     this.#listener = listener;
 *   }
 *   close(): void {
 *     LocalBackplane.#all.delete(this);
 *   }
 * }
 * ```
 */
export interface SseBackplane {
  /** Sends a message to every other instance. */
  publish(message: SseBackplaneMessage): void;
  /** Registers the one listener for the other instances' messages. */
  subscribe(listener: (message: SseBackplaneMessage) => void): void;
  /** Stops publishing and receiving; called by `SseChannel.close()`. */
  close(): void;
}

/**
 * A backplane on the web-standard `BroadcastChannel`: it spans the workers
 * of one Deno process, and isolates on Deno Deploy. Every channel that uses
 * the same `name` shares events.
 *
 * @example Two channels that share events (in two workers, usually)
 * ```ts
 * import { BroadcastChannelBackplane, SseChannel } from "./channel.ts";
 *
 * const channel = new SseChannel({
 *   backplane: new BroadcastChannelBackplane("news"),
 * });
 * channel.close();
 * ```
 */
export class BroadcastChannelBackplane implements SseBackplane {
  #channel: BroadcastChannel;

  /** Joins the broadcast channel called `name`. */
  constructor(name = "ssekit") {
    this.#channel = new BroadcastChannel(name);
  }

  /** Posts `message` to the other members of the broadcast channel. */
  publish(message: SseBackplaneMessage): void {
    this.#channel.postMessage(message);
  }

  /** Receives what the other members post. */
  subscribe(listener: (message: SseBackplaneMessage) => void): void {
    this.#channel.onmessage = (event: MessageEvent<SseBackplaneMessage>) =>
      listener(event.data);
  }

  /** Leaves the broadcast channel. */
  close(): void {
    this.#channel.close();
  }
}

/** Options for {@linkcode SseChannel}. */
export interface SseChannelOptions {
  /**
   * How many past events the channel keeps so that a client can resume.
   *
   * @default {1000}
   */
  historySize?: number;
  /**
   * How much wire text the history may hold, in UTF-16 code units (bytes,
   * for ASCII). The oldest events go first.
   *
   * @default {1048576}
   */
  historyBytes?: number;
  /**
   * How much a client may fall behind, in queued UTF-16 code units, before it
   * is disconnected. It then reconnects and resumes from the history, so this
   * must be at least `historyBytes`.
   *
   * @default {1048576}
   */
  maxBufferedAmount?: number;
  /**
   * Milliseconds of silence before a client gets a keep-alive comment; `0`
   * turns it off. One timer serves all clients.
   *
   * @default {15000}
   */
  keepAlive?: number;
  /** Extra headers for every client's response (as for `SseWriter`). */
  headers?: HeadersInit;
  /**
   * Shares the channel with other instances. Event ids then name every
   * instance's position, so that a client can resume on any of them.
   */
  backplane?: SseBackplane;
}

/** Options for {@linkcode SseChannel.connect}. */
export interface SseConnectOptions {
  /**
   * The topics this client receives, besides the events sent without a
   * topic. All events when absent.
   */
  topics?: string[];
  /**
   * Disconnects the client when aborted. Not needed on Deno, Bun and
   * workers, whose servers cancel the response body when a client leaves;
   * for a server adapter that does not, pass `request.signal`.
   */
  signal?: AbortSignal;
  /**
   * Called once when this client's stream ends, for whatever reason, after
   * the client has left `size`. For presence: "3 people here".
   */
  onClose?: () => void;
}

/** Options for {@linkcode SseChannel.send}. */
export interface SseSendOptions {
  /** Delivers the event only to clients connected with this topic. */
  topic?: string;
}

interface Client {
  writer: SseWriter;
  topics: Set<string> | undefined;
  /**
   * Set while the client has seen more of some origins than this instance
   * (it came from an instance further ahead): per origin, the last seq it
   * has. Those events are not sent to it again, and its ids include them.
   */
  ahead?: Map<string, number>;
}

interface Entry {
  origin: string;
  seq: number;
  /** The id this instance gave the event. */
  id: string;
  topic: string | undefined;
  /** The wire text without the `id:` line. */
  body: string;
}

type Vector = Map<string, number>;

const ENCODER = new TextEncoder();
/** A batch of events is handed to the clients once it holds this much text. */
const BATCH_UNITS = 65_536;

/** An id naming, for every origin, the last seq seen: `"a1b2:12,c3d4:7"`. */
function formatVector(vector: Vector): string {
  return [...vector].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([origin, seq]) => `${origin}:${seq}`).join(",");
}

function parseVector(id: string): Vector | undefined {
  const vector: Vector = new Map();
  for (const part of id.split(",")) {
    const [origin, seq, extra] = part.split(":");
    const number = Number(seq);
    if (!origin || extra !== undefined || !Number.isSafeInteger(number)) {
      return undefined;
    }
    vector.set(origin, number);
  }
  return vector;
}

function checkLimit(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(
      `Cannot create SseChannel: \`${name}\` must be a non-negative integer, got ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value as number;
}

function checkTopic(where: string, topic: unknown): void {
  if (typeof topic !== "string") {
    throw new TypeError(
      `${where}: a topic must be a string, got ${
        topic === null || typeof topic !== "object"
          ? String(topic)
          : "an object"
      }`,
    );
  }
}

/**
 * Sends each event to every connected client: the event is validated and
 * encoded once, and the same bytes go to every client.
 *
 * **Ids and resume.** An event gets the next id of the channel's sequence
 * (`"1"`, `"2"`, …) unless it has one. A new client first gets an `id:` line
 * with the channel's current position (`"0"` before any event), so even a
 * client that leaves before any event arrives can resume. A client that
 * reconnects with `Last-Event-ID` (or a `lastEventId` query parameter) first
 * gets every event after that id, in order, then the live ones. If the id is
 * no longer in the history, or unknown, the client gets `event: reset` (data
 * `{"reason": …}`, and the current position as its id) and should reload its
 * state: a gap is never silent.
 *
 * **Slow clients.** `send()` never waits. A client whose queue passes
 * `maxBufferedAmount` is disconnected (counted in `dropped`); it reconnects
 * and resumes from the history. Others are not delayed.
 *
 * **Several instances.** With a `backplane`, every instance delivers every
 * event. Each sender numbers its own events, and an id names the last number
 * seen from each sender (`"k2f9:12,x8aa:7"`). Concurrent events may reach
 * two instances in different orders, but such an id means the same set of
 * events on both, so a client resumes on any instance without gap or
 * duplicate, even on one that has not yet heard of everything it saw. Events
 * then cannot carry their own ids.
 *
 * @example A chat room: clients connect, messages go to everyone
 * ```ts
 * import { SseChannel } from "./channel.ts";
 *
 * const room = new SseChannel();
 * const response = room.connect(new Request("http://localhost/events"));
 * room.size; // 1
 * room.send({ event: "message", data: { text: "hi" } }); // "1"
 * room.close();
 * await response.text(); // 'id: 0\n\nid: 1\nevent: message\ndata: {"text":"hi"}\n\n'
 * ```
 */
export class SseChannel {
  #clients = new Set<Client>();
  #history: Entry[] = [];
  #historyUnits = 0;
  /** History position (seq) of each id, for resume without a backplane. */
  #positions = new Map<string, number>();
  /** The last seq seen from each origin: this instance's position. */
  #clock: Vector = new Map();
  /** Per origin, the highest seq that the history no longer holds. */
  #forgotten: Vector = new Map();
  /** Events recorded but not yet handed to the clients (see `#flush`). */
  #batch: Entry[] = [];
  #batchUnits = 0;
  #origin = crypto.randomUUID().slice(0, 8);
  #seq = 0;
  #dropped = 0;
  #closed = false;
  #historySize: number;
  #historyBytes: number;
  #maxBufferedAmount: number;
  #keepAlive: number | undefined;
  #headers: HeadersInit | undefined;
  #backplane: SseBackplane | undefined;

  /** Creates a channel; see {@linkcode SseChannelOptions} for defaults. */
  constructor(options: SseChannelOptions = {}) {
    this.#historySize = checkLimit("historySize", options.historySize, 1000);
    this.#historyBytes = checkLimit(
      "historyBytes",
      options.historyBytes,
      1_048_576,
    );
    this.#maxBufferedAmount = checkLimit(
      "maxBufferedAmount",
      options.maxBufferedAmount,
      1_048_576,
    );
    if (this.#maxBufferedAmount < this.#historyBytes) {
      throw new RangeError(
        `Cannot create SseChannel: \`maxBufferedAmount\` (${this.#maxBufferedAmount}) must be at least \`historyBytes\` (${this.#historyBytes}), or a resuming client could never catch up`,
      );
    }
    this.#keepAlive = options.keepAlive;
    this.#headers = options.headers;
    // Fail here, not at the first client, on bad writer options.
    new SseWriter({ keepAlive: this.#keepAlive, headers: this.#headers })
      .close();
    this.#clock.set(this.#origin, 0);
    this.#backplane = options.backplane;
    this.#backplane?.subscribe((message) => this.#receive(message));
  }

  /** How many clients are connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** True once `close()` was called: no more clients, no more events. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many clients were disconnected for falling too far behind. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Opens a stream for the client that sent `request`, replays what it
   * missed, and keeps it registered until it goes away, whatever the reason.
   * After `close()`, answers 503.
   */
  connect(request: Request, options: SseConnectOptions = {}): Response {
    const { topics, onClose } = options;
    if (onClose !== undefined && typeof onClose !== "function") {
      throw new TypeError("Cannot connect: `onClose` must be a function");
    }
    if (topics !== undefined) {
      if (!Array.isArray(topics)) {
        throw new TypeError(
          "Cannot connect: `topics` must be an array of strings",
        );
      }
      for (const topic of topics) checkTopic("Cannot connect", topic);
    }
    if (this.#closed) {
      return new Response("The event channel is closed\n", { status: 503 });
    }
    // Events still batched are in the history: deliver them before this
    // client is counted among those who get them (or it would get them twice).
    this.#flush();
    const writer = new SseWriter({
      signal: options.signal,
      keepAlive: this.#keepAlive,
      headers: this.#headers,
    });
    const client: Client = { writer, topics: topics && new Set(topics) };
    const last = lastEventId(request);
    const missed = last === undefined
      ? `id: ${this.#position()}\n\n`
      : this.#replay(last, client);
    if (missed !== "") writerInternals.send(writer, missed);
    this.#clients.add(client);
    writer.signal.addEventListener("abort", () => {
      this.#clients.delete(client);
      onClose?.();
    }, { once: true });
    return writer.response;
  }

  /**
   * Sends `event` to every client (or, with `options.topic`, to the clients
   * of that topic) and returns its id. Throws as `encodeEvent` does for a bad
   * event, and {@linkcode SseClosedError} after `close()`.
   */
  send(event: SseEvent, options: SseSendOptions = {}): string {
    if (this.#closed) {
      throw new SseClosedError("Cannot send event: the channel is closed");
    }
    const { topic } = options;
    if (topic !== undefined) checkTopic("Cannot send event", topic);
    let id: string | undefined;
    if (event?.id !== undefined) {
      if (this.#backplane) {
        throw new TypeError(
          "Cannot send event: a channel with a backplane assigns ids itself, so `id` must be left out",
        );
      }
      encodeEvent({ id: event.id }); // validates it
      id = String(event.id);
      event = { ...event, id: undefined };
    }
    const body = encodeEvent(event);
    const seq = ++this.#seq;
    this.#backplane?.publish({ origin: this.#origin, seq, body, topic });
    return this.#deliver(this.#origin, seq, body, topic, id);
  }

  /** Ends every client's stream and refuses new clients; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#backplane?.close();
    for (const { writer } of this.#clients) writer.close();
    this.#clients.clear();
  }

  #receive(message: SseBackplaneMessage): void {
    if (this.#closed || message?.origin === this.#origin) return;
    const { origin, seq, body, topic } = message;
    const last = this.#clock.get(origin);
    if (last === undefined) {
      // Joined mid-stream: what this origin sent before is unknown here.
      if (seq > 1) this.#forgotten.set(origin, seq - 1);
    } else if (seq <= last) {
      return; // a duplicate
    } else if (seq !== last + 1) {
      this.#forgotten.set(origin, seq - 1);
      this.#clock.set(origin, seq - 1);
      this.#broadcastReset("the backplane lost events");
    }
    this.#deliver(origin, seq, body, topic, undefined);
  }

  /** Records an event and queues it for the clients; returns its id. */
  #deliver(
    origin: string,
    seq: number,
    body: string,
    topic: string | undefined,
    explicitId: string | undefined,
  ): string {
    this.#clock.set(origin, seq);
    const id = explicitId ??
      (this.#backplane ? formatVector(this.#clock) : String(seq));
    const entry = { origin, seq, id, topic, body };
    this.#remember(entry);
    if (this.#batch.push(entry) === 1) queueMicrotask(this.#flush);
    this.#batchUnits += body.length;
    if (this.#batchUnits > BATCH_UNITS) this.#flush();
    return id;
  }

  /**
   * Hands the events sent in this turn of the event loop to the clients:
   * encoded once as one chunk, shared by every client that takes them all.
   * Runs as a microtask, so events still go out within the same turn.
   */
  #flush = (): void => {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    this.#batchUnits = 0;
    const forEveryone = batch.every((entry) => entry.topic === undefined);
    let shared: string | undefined;
    let sharedBytes: Uint8Array | undefined;
    for (const client of this.#clients) {
      if (client.ahead === undefined && (forEveryone || !client.topics)) {
        shared ??= batch.map((entry) => `id: ${entry.id}\n${entry.body}`)
          .join("");
        sharedBytes ??= ENCODER.encode(shared);
        writerInternals.send(client.writer, shared, sharedBytes);
      } else {
        const text = this.#textFor(client, batch);
        if (text !== "") writerInternals.send(client.writer, text);
      }
      if (client.writer.bufferedAmount > this.#maxBufferedAmount) {
        this.#dropped++;
        writerInternals.drop(client.writer);
      }
    }
  };

  /** The part of `batch` for a client with topics or ahead of this instance. */
  #textFor(client: Client, batch: Entry[]): string {
    let text = "";
    for (const { origin, seq, id, topic, body } of batch) {
      if (topic !== undefined && client.topics && !client.topics.has(topic)) {
        continue;
      }
      if (client.ahead === undefined) {
        text += `id: ${id}\n${body}`;
      } else if (!this.#hasSeen(client, origin, seq)) {
        text += `id: ${this.#vectorFor(client)}\n${body}`;
      }
    }
    return text;
  }

  /** Whether an `ahead` client has the event already; updates `ahead`. */
  #hasSeen(client: Client, origin: string, seq: number): boolean {
    const ahead = client.ahead!;
    const last = ahead.get(origin);
    if (last === undefined) return false;
    if (seq >= last) {
      ahead.delete(origin);
      if (ahead.size === 0) client.ahead = undefined;
    }
    return seq <= last;
  }

  /** The id for a client: this instance's vector, raised by `ahead`. */
  #vectorFor(client: Client): string {
    const vector = new Map(this.#clock);
    for (const [origin, seq] of client.ahead ?? []) vector.set(origin, seq);
    return formatVector(vector);
  }

  /** The id of this instance's current position. */
  #position(): string {
    if (this.#backplane) return formatVector(this.#clock);
    return this.#history.at(-1)?.id ?? String(this.#seq);
  }

  #remember(entry: Entry): void {
    this.#history.push(entry);
    this.#historyUnits += entry.body.length + entry.id.length;
    if (!this.#backplane) this.#positions.set(entry.id, entry.seq);
    while (
      this.#history.length > this.#historySize ||
      this.#historyUnits > this.#historyBytes
    ) {
      const old = this.#history.shift()!;
      this.#historyUnits -= old.body.length + old.id.length;
      this.#forgotten.set(old.origin, old.seq);
      if (this.#positions.get(old.id) === old.seq) {
        this.#positions.delete(old.id);
      }
    }
  }

  /**
   * The wire text for a client resuming after the id `last`: the events it
   * missed, each with an id that names exactly what the client then has; or
   * a reset event when they cannot be known.
   */
  #replay(last: string, client: Client): string {
    const seen = this.#seen(last);
    if (typeof seen === "string") {
      return encodeEvent({
        event: "reset",
        id: this.#position(),
        data: { reason: seen },
      });
    }
    const { topics } = client;
    let text = "";
    for (const entry of this.#history) {
      if (entry.seq <= (seen.get(entry.origin) ?? 0)) continue;
      seen.set(entry.origin, entry.seq);
      if (entry.topic !== undefined && topics && !topics.has(entry.topic)) {
        continue;
      }
      const id = this.#backplane ? formatVector(seen) : entry.id;
      text += `id: ${id}\n${entry.body}`;
    }
    for (const [origin, seq] of seen) {
      if (seq > (this.#clock.get(origin) ?? 0)) {
        (client.ahead ??= new Map()).set(origin, seq);
      }
    }
    return text;
  }

  /**
   * What a client whose last event id is `id` has seen, as the last seq of
   * each origin; or why the events it missed cannot be replayed.
   */
  #seen(id: string): Vector | string {
    if (!this.#backplane) {
      const seq = this.#positions.get(id) ??
        (id === "0" && !this.#forgotten.has(this.#origin) ? 0 : undefined);
      if (seq === undefined) {
        return `the last event id ${JSON.stringify(id)} is unknown or too old`;
      }
      return new Map([[this.#origin, seq]]);
    }
    const seen = parseVector(id);
    if (seen === undefined) {
      return `the last event id ${JSON.stringify(id)} is not one of ours`;
    }
    for (const [origin, forgotten] of this.#forgotten) {
      if ((seen.get(origin) ?? 0) < forgotten) {
        return "events after the last event id are no longer in the history";
      }
    }
    return seen;
  }

  #broadcastReset(reason: string): void {
    this.#flush();
    const text = encodeEvent({
      event: "reset",
      id: this.#position(),
      data: { reason },
    });
    const bytes = ENCODER.encode(text);
    for (const client of this.#clients) {
      client.ahead = undefined;
      writerInternals.send(client.writer, text, bytes);
    }
  }
}
