// Internal to ssekit: the ids of a channel on an unordered backplane
// (`SseBackplane`). mod.ts exports none of it.

import type { SseBackplane, SseBackplaneMessage } from "./backplane.ts";
import { describe } from "./_validate.ts";
import { History } from "./_history.ts";
import {
  type Client,
  type Entry,
  frame,
  type Host,
  type IdScheme,
  type Outgoing,
  resetText,
  type SchemeOptions,
  takes,
} from "./_scheme.ts";

/** Per origin (a sending instance), the last seq seen from it. */
type Vector = Map<string, number>;

interface VectorEntry extends Entry {
  /** The sending instance. */
  origin: string;
  /** The sender's number for it. */
  seq: number;
}

/**
 * An id naming, for every origin, the last seq seen: `"a1b2:12,c3d4:7"`.
 * An origin missing means 0, so zeros are left out but for `self`'s.
 */
function formatVector(vector: Vector, self: string): string {
  return [...vector].filter(([origin, seq]) => seq > 0 || origin === self)
    .sort(([a], [b]) => a < b ? -1 : 1)
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

/** Whether a backplane brought a message of the right shape. */
function isMessage(message: unknown): message is SseBackplaneMessage {
  const { origin, seq, body, topic } = (message ?? {}) as SseBackplaneMessage;
  return typeof origin === "string" && /^[^:,]+$/.test(origin) &&
    Number.isSafeInteger(seq) && seq >= 0 && typeof body === "string" &&
    (topic === undefined || typeof topic === "string");
}

/**
 * On an unordered backplane: each sender numbers its own events, and an id
 * names the last number seen from each sender. Two instances may deliver
 * concurrent events in different orders, but an id means the same set of
 * events on both. A client that has seen more of some senders than this
 * instance (it is `ahead`, a vector of those) gets only what it lacks.
 */
export class VectorIds implements IdScheme<Vector> {
  readonly refusesIds = "a channel with a backplane assigns ids itself";
  #host: Host<VectorEntry>;
  #backplane: SseBackplane;
  #historySize: number;
  #history: History<VectorEntry>;
  #origin = crypto.randomUUID().slice(0, 8);
  /** This instance's own count of sent events. */
  #seq = 0;
  /** The last seq seen from each origin: this instance's position. */
  #clock: Vector = new Map([[this.#origin, 0]]);
  /** Per origin, the highest seq that the history no longer holds. */
  #forgotten: Vector = new Map();
  #closed = false;

  constructor(
    backplane: SseBackplane,
    host: Host<VectorEntry>,
    { history }: SchemeOptions,
  ) {
    this.#host = host;
    this.#backplane = backplane;
    this.#historySize = history.size;
    this.#history = new History(
      history,
      undefined,
      (old) => this.#forgotten.set(old.origin, old.seq),
    );
    backplane.subscribe((message) => this.#receive(message));
    // Announced before any event of ours, so that the others know of this
    // instance when a client comes to them from it.
    backplane.publish({ origin: this.#origin, seq: 0, body: "" });
  }

  position(): string {
    return formatVector(this.#clock, this.#origin);
  }

  send({ body, topic }: Outgoing): string {
    const seq = ++this.#seq;
    this.#backplane.publish({ origin: this.#origin, seq, body, topic });
    return this.#deliver(this.#origin, seq, body, topic);
  }

  publish(event: Outgoing): Promise<string> {
    return Promise.resolve(this.send(event));
  }

  resume(client: Client<Vector>, last: string): string {
    const seen = this.#seen(last);
    if (typeof seen === "string") return resetText(seen, this.position());
    let text = "";
    for (const entry of this.#history.entries) {
      if (entry.seq <= (seen.get(entry.origin) ?? 0)) continue;
      seen.set(entry.origin, entry.seq);
      if (takes(client, entry.topic)) {
        text += frame(formatVector(seen, this.#origin), entry.body);
      }
    }
    for (const [origin, seq] of seen) {
      if (seq > (this.#clock.get(origin) ?? 0)) {
        (client.ahead ??= new Map()).set(origin, seq);
      }
    }
    return text;
  }

  catchUp(client: Client<Vector>, batch: readonly Entry[]): string {
    let text = "";
    for (const entry of batch as readonly VectorEntry[]) {
      const ahead = client.ahead;
      if (ahead === undefined) {
        if (takes(client, entry.topic)) text += frame(entry.id, entry.body);
        continue;
      }
      // Looked at whatever the topic, or a client of a quiet topic would
      // stay ahead until its timer resets it.
      const last = ahead.get(entry.origin);
      if (last !== undefined && entry.seq >= last) {
        ahead.delete(entry.origin);
        if (ahead.size === 0) client.ahead = undefined;
      }
      if (last !== undefined && entry.seq <= last) continue; // it has it
      if (!takes(client, entry.topic)) continue;
      text += frame(this.#idFor(entry, client.ahead), entry.body);
    }
    return text;
  }

  close(): void {
    this.#closed = true;
    this.#backplane.close();
  }

  #receive(message: SseBackplaneMessage): void {
    if (this.#closed || !isMessage(message)) return;
    const { origin, seq, body, topic } = message;
    if (origin === this.#origin) return;
    const last = this.#clock.get(origin);
    if (seq === 0) {
      if (last === undefined) this.#clock.set(origin, 0); // a new instance
      return;
    }
    if (last === undefined) {
      // Joined mid-stream: what this origin sent before is unknown here.
      if (seq > 1) this.#forgotten.set(origin, seq - 1);
    } else if (seq <= last) {
      return; // a duplicate
    } else if (seq !== last + 1) {
      this.#forgotten.set(origin, seq - 1);
      this.#clock.set(origin, seq - 1);
      this.#host.reset("the backplane lost events");
    }
    this.#deliver(origin, seq, body, topic);
  }

  /** Keeps and delivers an event sent here or by another instance. */
  #deliver(
    origin: string,
    seq: number,
    body: string,
    topic: string | undefined,
  ): string {
    this.#clock.set(origin, seq);
    const entry = { origin, seq, id: this.position(), topic, body };
    this.#history.push(entry);
    this.#host.deliver(entry);
    return entry.id;
  }

  /**
   * The id of `entry` for a client still ahead: what this instance had with
   * it, raised by what the client has beyond.
   */
  #idFor(entry: VectorEntry, ahead: Vector | undefined): string {
    if (ahead === undefined) return entry.id;
    const vector = parseVector(entry.id)!;
    for (const [origin, seq] of ahead) {
      if (seq > (vector.get(origin) ?? 0)) vector.set(origin, seq);
    }
    return formatVector(vector, this.#origin);
  }

  /**
   * What a client whose last event id is the vector `id` has seen, as the
   * last seq of each origin; or why the events it missed cannot be replayed.
   */
  #seen(id: string): Vector | string {
    const seen = parseVector(id);
    if (seen === undefined) {
      return `the last event id ${describe(id)} is not one of ours`;
    }
    for (const [origin, forgotten] of this.#forgotten) {
      if ((seen.get(origin) ?? 0) < forgotten) {
        return "events after the last event id are no longer in the history";
      }
    }
    for (const [origin, seq] of seen) {
      // Sent before this instance listened, or by one that has gone since:
      // what followed it cannot be known here.
      if (seq > 0 && !this.#clock.has(origin)) {
        return "the last event id names a server this one has not heard from";
      }
      if (seq - (this.#clock.get(origin) ?? 0) > this.#historySize) {
        return "the last event id is too far ahead of this server";
      }
    }
    return seen;
  }
}
