// Internal to ssekit: the ids of a channel on an ordered backplane
// (`SseOrderedBackplane`): an event's id is its position in the order.
// mod.ts exports none of it.

import type { SseOrderedBackplane, SseOrderedEntry } from "./backplane.ts";
import { describe } from "./_validate.ts";
import { History } from "./_history.ts";
import {
  type Client,
  type Entry,
  frame,
  framed,
  type Host,
  type IdScheme,
  type Outgoing,
  resetText,
  type SchemeOptions,
  takes,
} from "./_scheme.ts";

interface OrderedEntry extends Entry {
  /** The position just before it, where a reset in its place goes. */
  before: string;
}

/** A client ahead of this instance: it has every entry up to `position`. */
interface After {
  position: string;
  /** How many entries went by since (each before `position`). */
  skipped: number;
}

/**
 * On an ordered backplane: ids are the backplane's positions, the same on
 * every instance. The scheme knows its position once the backplane starts
 * (with its recent past, which fills the history); a client whose id is
 * further along waits for this instance to reach it, within `historySize`
 * entries.
 */
export class OrderedIds implements IdScheme<After> {
  readonly refusesIds = "on an ordered backplane an event's id is its position";
  #host: Host<OrderedEntry>;
  #backplane: SseOrderedBackplane;
  #limits: SchemeOptions["history"];
  #history: History<OrderedEntry> | undefined;
  /** The position of the last entry; undefined until started. */
  #at: string | undefined;
  /** The position after which the backplane last lost entries. */
  #gapAt: string | undefined;
  #closed = false;

  constructor(
    backplane: SseOrderedBackplane,
    host: Host<OrderedEntry>,
    { history }: SchemeOptions,
  ) {
    if (typeof backplane.compare !== "function") {
      throw new TypeError(
        "Cannot create SseChannel: an ordered `backplane` must have a compare method",
      );
    }
    this.#host = host;
    this.#backplane = backplane;
    this.#limits = history;
    backplane.subscribe({
      start: (entries, after) => this.#start(entries, after),
      entry: (entry) => this.#entry(entry),
      lost: (reason) => this.#lost(reason),
    }, history.size);
  }

  position(): string | undefined {
    return this.#at;
  }

  send(): string {
    throw new TypeError(
      "Cannot send event: on an ordered backplane an event has no id until the backplane orders it; use `await channel.publish(event)`",
    );
  }

  publish(
    { body, topic }: Outgoing,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    return this.#backplane.publish(body, { topic, signal });
  }

  resume(client: Client<After>, last: string): string {
    const missed = this.#history!.after(last);
    if (missed !== undefined) return framed(client, missed);
    const order = this.#backplane.compare(last, this.#at!);
    let reason = `the last event id ${describe(last)} is unknown or too old`;
    if (Number.isNaN(order)) {
      reason = `the last event id ${describe(last)} is not one of ours`;
    } else if (order > 0) {
      // The client comes from an instance further along the order.
      client.ahead = { position: last, skipped: 0 };
      return "";
    } else if (
      this.#gapAt !== undefined &&
      this.#backplane.compare(last, this.#gapAt) <= 0
    ) {
      reason = "events after the last event id were lost by the backplane";
    }
    return resetText(reason, this.#at!);
  }

  catchUp(client: Client<After>, batch: readonly Entry[]): string {
    let text = "";
    for (const entry of batch as readonly OrderedEntry[]) {
      const after = client.ahead;
      if (after !== undefined) {
        const order = this.#backplane.compare(entry.id, after.position);
        if (order < 0 && ++after.skipped <= this.#limits.size) continue;
        client.ahead = undefined;
        if (order < 0) {
          text += resetText(
            "the last event id is too far ahead of this server",
            entry.before,
          );
        } else if (order === 0) {
          continue; // caught up: the client has this one
        } else {
          // Past the client's id without meeting it: the order never had it
          // (or has lost it), so what the client missed is unknown.
          text += resetText(
            "the last event id is not in the order",
            entry.before,
          );
        }
      }
      if (takes(client, entry.topic)) text += frame(entry.id, entry.body);
    }
    return text;
  }

  close(): void {
    this.#closed = true;
    this.#backplane.close();
  }

  /** The recent past and the position the backplane starts at. */
  #start(entries: SseOrderedEntry[], after: string): void {
    if (this.#closed || this.#at !== undefined) return;
    this.#history = new History(this.#limits, after);
    this.#at = after;
    for (const entry of entries) this.#history.push(this.#keep(entry));
    this.#host.started();
  }

  /** The next entry of the order. */
  #entry(entry: SseOrderedEntry): void {
    if (this.#closed || this.#at === undefined) return;
    const kept = this.#keep(entry);
    this.#history!.push(kept);
    this.#host.deliver(kept);
  }

  /** An entry of the order as the history keeps it; moves the position. */
  #keep({ position, body, topic }: SseOrderedEntry): OrderedEntry {
    const entry = { id: position, topic, body, before: this.#at! };
    this.#at = position;
    return entry;
  }

  /**
   * The backplane may have lost entries after the last one given. Every
   * client now connected gets a reset; and since a client that later
   * resumes from anything before here would be replayed across the gap, the
   * history forgets what it holds and that anything came before.
   */
  #lost(reason: string): void {
    if (this.#closed || this.#at === undefined) return;
    this.#host.reset(reason);
    this.#history!.clear();
    this.#gapAt = this.#at;
  }
}
