// The client side of soak/encode_fuzz.ts: an event stream's bytes cut at
// random places (inside CRLFs, inside UTF-8 characters, before BOMs), decoded
// and fed to an independent parser, eventsource-parser, and what it reads
// compared with what the model says a client must read.

import { createParser, type EventSourceParser } from "eventsource-parser";
import type { Rng } from "./_fuzz_rng.ts";
import {
  type Observation,
  sameObservation,
  showObservation,
} from "./_fuzz_events.ts";

/** Where the cuts fell, to show that the awkward places were hit. */
export interface SplitStats {
  bytes: number;
  pieces: number;
  /** Cuts between a CR and its LF. */
  insideCrlf: number;
  /** Cuts inside a multi-byte UTF-8 character. */
  insideUtf8: number;
  /** Cuts just before a BOM (EF BB BF), so that a piece starts with one. */
  beforeBom: number;
}

/** Fresh counts. */
export function noStats(): SplitStats {
  return { bytes: 0, pieces: 0, insideCrlf: 0, insideUtf8: 0, beforeBom: 0 };
}

/**
 * Reads one event stream: `push` its bytes as they come; each is cut again
 * at random, decoded with a streaming TextDecoder and fed to
 * eventsource-parser, which reports to `onObservation`.
 *
 * The decoder has `ignoreBOM: true` and the first BOM of the stream is
 * dropped here, as the spec says: Deno's streaming TextDecoder would
 * otherwise also drop the one that starts the first chunk after all-ASCII
 * ones, which is data (tests/parse_test.ts). The parser is then fed a
 * blank line first (which dispatches nothing), so that it does not drop a
 * second one.
 */
export class SplitReader {
  readonly stats: SplitStats = noStats();
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #parser: EventSourceParser;
  #started = false;
  #lastId = "";

  constructor(
    readonly rng: Rng,
    onObservation: (o: Observation) => void,
  ) {
    this.#parser = createParser({
      onId: (id) => this.#lastId = id,
      onRetry: (value) => onObservation({ kind: "retry", value }),
      onEvent: ({ event, data }) =>
        onObservation({
          kind: "event",
          type: event ?? "message",
          data,
          id: this.#lastId,
        }),
    });
    this.#parser.feed("\n");
  }

  /** Takes the next bytes of the stream. */
  push(bytes: Uint8Array): void {
    const stats = this.stats;
    stats.bytes += bytes.length;
    let start = 0;
    for (const cut of this.#cuts(bytes)) {
      this.#feed(bytes.subarray(start, cut));
      start = cut;
    }
    this.#feed(bytes.subarray(start));
  }

  /** Ends the stream: what is left in the decoder goes to the parser. */
  end(): void {
    const text = this.#decoder.decode();
    if (text !== "") this.#parser.feed(text);
  }

  #feed(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.stats.pieces++;
    let text = this.#decoder.decode(piece, { stream: true });
    if (!this.#started && text !== "") {
      this.#started = true;
      if (text.startsWith("\ufeff")) text = text.slice(1);
    }
    if (text !== "") this.#parser.feed(text);
  }

  /**
   * Where to cut `bytes`: random lengths, mostly short, and often at the
   * awkward places.
   */
  *#cuts(bytes: Uint8Array): Generator<number> {
    const rng = this.rng;
    const stats = this.stats;
    let next = this.#length();
    for (let i = 1; i < bytes.length; i++) {
      let cut = i >= next;
      const byte = bytes[i];
      if (byte === 0x0a && bytes[i - 1] === 0x0d) {
        if (cut || rng.chance(0.5)) {
          cut = true;
          stats.insideCrlf++;
        }
      } else if ((byte & 0xc0) === 0x80) {
        if (cut || rng.chance(0.05)) {
          cut = true;
          stats.insideUtf8++;
        }
      } else if (
        byte === 0xef && bytes[i + 1] === 0xbb && bytes[i + 2] === 0xbf
      ) {
        if (cut || rng.chance(0.5)) {
          cut = true;
          stats.beforeBom++;
        }
      }
      if (cut) {
        yield i;
        next = i + this.#length();
      }
    }
  }

  #length(): number {
    const roll = this.rng.float();
    return roll < 0.4
      ? this.rng.range(1, 8)
      : roll < 0.9
      ? this.rng.range(9, 300)
      : this.rng.range(301, 20_000);
  }
}

/**
 * Compares observations with the expected ones, in order. After a
 * difference it finds its place again at the next sentinel event, so that
 * one fault is not counted for every event after it.
 */
export class Matcher {
  matched = 0;
  mismatches = 0;
  /** Differences that are only a U+FEFF gone missing (see `bomTolerant`). */
  bomDropped = 0;
  readonly examples: string[] = [];
  #expected: Observation[] = [];
  #head = 0;
  /** Expected ones already let go of (see `#advance`). */
  #dropped = 0;

  /**
   * With `bomTolerant`, an event whose data differs only by missing U+FEFF
   * characters is counted in `bomDropped`, not as a mismatch: Deno's
   * EventSource decodes with a `TextDecoderStream`, which drops the BOM that
   * starts its first network chunk after all-ASCII ones (a runtime bug, not
   * ssekit's).
   */
  constructor(readonly name: string, readonly bomTolerant = false) {}

  expect(o: Observation): void {
    this.#expected.push(o);
  }

  /** Expected in all. */
  get total(): number {
    return this.#dropped + this.#expected.length;
  }

  /** Expected but not seen yet. */
  get pending(): number {
    return this.#expected.length - this.#head;
  }

  actual(o: Observation): void {
    const expected = this.#expected[this.#head];
    if (expected !== undefined && sameObservation(expected, o)) {
      this.#advance();
      this.matched++;
      return;
    }
    if (
      this.bomTolerant && expected?.kind === "event" && o.kind === "event" &&
      expected.type === o.type && expected.id === o.id &&
      expected.data.replaceAll("\ufeff", "") === o.data.replaceAll("\ufeff", "")
    ) {
      this.#advance();
      this.bomDropped++;
      return;
    }
    this.mismatches++;
    if (this.examples.length < 3) {
      this.examples.push(
        `${this.name}: expected ${showObservation(expected)}, read ${
          showObservation(o)
        }`,
      );
    }
    if (o.kind === "event" && o.type === "sentinel") {
      // Skip to this sentinel: what came before it is missing.
      for (let i = this.#head; i < this.#expected.length; i++) {
        const e = this.#expected[i];
        if (e.kind === "event" && e.type === "sentinel" && e.data === o.data) {
          this.mismatches += Math.max(0, i - this.#head - 1);
          this.#head = i;
          this.#advance();
          return;
        }
      }
    } else if (expected !== undefined) this.#advance();
  }

  #advance(): void {
    this.#head++;
    if (this.#head > 4096 && this.#head * 2 > this.#expected.length) {
      this.#dropped += this.#head;
      this.#expected = this.#expected.slice(this.#head);
      this.#head = 0;
    }
  }
}
