// Internal to ssekit: the ids of a channel without a backplane. mod.ts
// exports none of it.

import { describe } from "./_validate.ts";
import { History } from "./_history.ts";
import {
  type Client,
  type Entry,
  framed,
  type Host,
  type IdScheme,
  type Outgoing,
  resetText,
  type SchemeOptions,
} from "./_scheme.ts";

/** An id of this scheme: the channel's epoch, a dash, a count. */
const LOCAL_ID = /^([0-9a-z]{6})-(0|[1-9]\d*)$/;

/**
 * A new epoch: six random base-36 characters, drawn once per channel, so
 * that an id from another run of a channel (before a restart) or another
 * instance never names an event of this one.
 */
function newEpoch(): string {
  const [n] = crypto.getRandomValues(new Uint32Array(1));
  return (n % 36 ** 6).toString(36).padStart(6, "0");
}

/**
 * Without a backplane: events are numbered `<epoch>-1`, `<epoch>-2`, …,
 * unless they bring their own ids, and a client resumes from the history.
 */
export class LocalIds implements IdScheme<never> {
  readonly refusesIds = undefined;
  #host: Host<Entry>;
  #epoch = newEpoch();
  /** How many events were sent, with an id of their own or not. */
  #count = 0;
  #position: string;
  #history: History<Entry>;

  constructor(host: Host<Entry>, { history }: SchemeOptions) {
    this.#host = host;
    this.#position = `${this.#epoch}-0`;
    this.#history = new History(history, this.#position);
  }

  position(): string {
    return this.#position;
  }

  send({ body, topic, id }: Outgoing): string {
    this.#count++;
    const entry = { id: id ?? `${this.#epoch}-${this.#count}`, topic, body };
    this.#position = entry.id;
    this.#history.push(entry);
    this.#host.deliver(entry);
    return entry.id;
  }

  publish(event: Outgoing): Promise<string> {
    return Promise.resolve(this.send(event));
  }

  resume(client: Client, last: string): string {
    const missed = this.#history.after(last);
    if (missed !== undefined) return framed(client, missed);
    return resetText(this.#unknown(last), this.#position);
  }

  catchUp(): string {
    return ""; // no client is ever ahead of the only instance
  }

  close(): void {}

  /** Why the id `last` cannot be resumed. */
  #unknown(last: string): string {
    const [, epoch, count] = LOCAL_ID.exec(last) ?? [];
    if (epoch !== undefined && epoch !== this.#epoch) {
      return "the last event id is from another run of this channel (the server restarted, or it is another server): what followed it is unknown here";
    }
    if (count !== undefined && Number(count) > this.#count) {
      return "the last event id is ahead of this channel";
    }
    return `the last event id ${describe(last)} is unknown or too old`;
  }
}
