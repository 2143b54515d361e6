// Nasty events for soak/encode_fuzz.ts, drawn from a seeded PRNG, and an
// independent model of what ssekit must do with each: which fields it must
// reject (from the README's rules, not from the library's code), and what a
// spec-conforming client must read back when it accepts one.

import type { SseEvent } from "../mod.ts";
import type { Rng } from "./_fuzz_rng.ts";

/** The four fields, as error messages name them in backticks. */
export type Field = "event" | "data" | "id" | "retry";

const HIGH = ["\ud800", "\udbff", "\ud83d"];
const LOW = ["\udc00", "\udfff", "\ude00"];
const ASTRAL = ["😀", "𝄞", "\u{10ffff}", "\u{1f468}\u200d\u{1f469}"];
const BOM = "\ufeff";

/** Pieces that strings are made of: line breaks, lookalikes, odd code points. */
const PIECES = [
  "a",
  "abc",
  "tick",
  " ",
  "  lead",
  ":",
  "data:",
  "id:",
  "event:",
  "retry:",
  "data: x",
  "id: 7",
  "event: forged",
  "retry: 1",
  "\n\ndata: forged\n\n",
  "é",
  "日本語",
  "\t",
  "\x7f",
  "\x01",
  "\x1b[0m",
  "\u0085", // NEL: not a line break to SSE
  "\u000b",
  "\u000c",
  "\u2028",
  "\u2029",
  BOM,
  "123",
  "-1",
  "{}",
  '"',
  "\\",
  "\u0301",
  "\u202e",
];

/** Pieces that carry a line break or NUL. */
const BREAKS = ["\r", "\n", "\r\n", "\n\r", "\r\r\n", "\0"];

/** How to draw a string: which nasty kinds it may hold. */
interface Mix {
  breaks: number;
  surrogates: number;
}

/** A nasty string of a few pieces (or, rarely, one long line). */
function nasty(rng: Rng, mix: Mix): string {
  const roll = rng.float();
  if (roll < 0.04) return "";
  if (roll < 0.045) {
    // A long line: most events are short, a few are not.
    const n = rng.chance(0.1)
      ? rng.range(20_000, 70_000)
      : rng.range(500, 5000);
    return rng.pick(["x", "é", "日", "😀", " "]).repeat(n / 2) +
      (rng.chance(0.5) ? rng.pick(ASTRAL) : "");
  }
  let text = "";
  const n = rng.range(1, 6);
  for (let i = 0; i < n; i++) {
    const r = rng.float();
    if (r < mix.breaks) text += rng.pick(BREAKS);
    else if (r < mix.breaks + mix.surrogates) {
      text += rng.pick(rng.chance(0.5) ? HIGH : LOW);
    } else if (r < mix.breaks + mix.surrogates + 0.08) {
      text += rng.pick(ASTRAL);
    } else text += rng.pick(PIECES);
  }
  return text;
}

/** A JSON-ish value with nasty strings in it; rarely one JSON cannot take. */
function value(rng: Rng, depth: number): unknown {
  const roll = rng.int(depth > 2 ? 6 : 9);
  switch (roll) {
    case 0:
      return nasty(rng, { breaks: 0.2, surrogates: 0.1 });
    case 1:
      return rng.pick([0, -0, 1.5, -7, 1e21, 2 ** 53 + 2, NaN, Infinity]);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return undefined; // dropped in objects, null in arrays
    case 4:
      return nasty(rng, { breaks: 0, surrogates: 0.3 });
    case 5:
      return rng.pick(["", BOM + "x", "a\u2028b"]);
    case 6:
      return Array.from(
        { length: rng.range(0, 4) },
        () => value(rng, depth + 1),
      );
    case 7: {
      const object: Record<string, unknown> = {};
      for (let i = rng.range(0, 4); i > 0; i--) {
        object[nasty(rng, { breaks: 0.1, surrogates: 0.1 })] = value(
          rng,
          depth + 1,
        );
      }
      return object;
    }
    default: {
      // Drawn once: toJSON runs at every encoding, and must agree.
      const text = nasty(rng, { breaks: 0.2, surrogates: 0.1 });
      return { toJSON: () => text };
    }
  }
}

/** Data that JSON.stringify rejects or turns into nothing. */
function badData(rng: Rng): unknown {
  switch (rng.int(5)) {
    case 0:
      return 5n;
    case 1:
      return () => 1;
    case 2:
      return Symbol("s");
    case 3: {
      const loop: Record<string, unknown> = { a: 1 };
      loop.self = loop;
      return loop;
    }
    default:
      return { big: [1n] };
  }
}

/** A random event: mostly valid, often with every kind of nastiness. */
export function randomEvent(rng: Rng): SseEvent {
  const event: Record<string, unknown> = {};
  if (rng.chance(0.5)) {
    const roll = rng.float();
    event.event = roll < 0.03
      ? rng.pick<unknown>([5, null, {}, true])
      : roll < 0.25
      ? rng.pick(["tick", "message", "", "error", "open", " x", "a:b"])
      : nasty(rng, { breaks: 0.04, surrogates: 0.04 });
  }
  if (rng.chance(0.85)) {
    const roll = rng.float();
    if (roll < 0.02) event.data = badData(rng);
    else if (roll < 0.72) {
      let data = nasty(rng, { breaks: 0.25, surrogates: 0.08 });
      if (rng.chance(0.15)) data = BOM + data; // a BOM at the start of data
      event.data = data;
    } else event.data = value(rng, 0);
    // `undefined` data is an absent field: fine unless the event is named.
  }
  if (rng.chance(0.4)) {
    const roll = rng.float();
    event.id = roll < 0.3
      ? rng.pick([
        0,
        -0,
        1,
        42,
        1.5,
        -3,
        1e21,
        2 ** 53 + 1,
        NaN,
        Infinity,
        -Infinity,
      ])
      : roll < 0.33
      ? rng.pick<unknown>([null, true, {}, 5n])
      : rng.chance(0.1)
      ? ""
      : nasty(rng, { breaks: 0.04, surrogates: 0.04 });
  }
  if (rng.chance(0.15)) {
    event.retry = rng.chance(0.6)
      ? rng.pick([0, 1, 2000, 999_999, 2 ** 53 - 1, -0])
      : rng.pick<unknown>([-1, NaN, 1.5, Infinity, 2 ** 53, "100", null]);
  }
  if (rng.chance(0.003)) return {}; // no field at all
  return event as SseEvent;
}

/**
 * The fields ssekit must reject `event` for, by the README's rules; empty
 * if it must accept it. An event with no field may be rejected naming any.
 */
export function badFields(event: SseEvent): Field[] {
  const bad: Field[] = [];
  const { event: name, data, id, retry } = event as Record<string, unknown>;
  if (name !== undefined) {
    if (
      typeof name !== "string" || /[\r\n]/.test(name) || !name.isWellFormed() ||
      data === undefined
    ) bad.push("event");
  }
  if (id !== undefined) {
    if (typeof id === "number") {
      if (!Number.isFinite(id)) bad.push("id");
    } else if (
      typeof id !== "string" || /[\r\n\0]/.test(id) || !id.isWellFormed()
    ) bad.push("id");
  }
  if (retry !== undefined) {
    if (
      typeof retry !== "number" || !Number.isSafeInteger(retry) || retry < 0
    ) {
      bad.push("retry");
    }
  }
  if (data !== undefined) {
    let json: string | undefined;
    try {
      json = typeof data === "string" ? data : JSON.stringify(data);
    } catch {
      json = undefined;
    }
    if (json === undefined) bad.push("data");
  }
  if (
    name === undefined && data === undefined && id === undefined &&
    retry === undefined
  ) bad.push("event", "data", "id", "retry");
  return bad;
}

/** Whether `event` has a lone surrogate in its `event` or `id`. */
export function loneSurrogateInName(event: SseEvent): boolean {
  const { event: name, id } = event;
  return (typeof name === "string" && !name.isWellFormed()) ||
    (typeof id === "string" && !id.isWellFormed());
}

/** Why the call threw, if it names one of `fields`; else what is wrong. */
export function namesField(error: unknown, fields: Field[]): string | true {
  if (!(error instanceof TypeError || error instanceof RangeError)) {
    return `threw ${
      (error as Error)?.name ?? typeof error
    }, not a TypeError or RangeError`;
  }
  if (fields.some((field) => error.message.includes(`\`${field}\``))) {
    return true;
  }
  return `message names none of ${
    fields.map((f) => `\`${f}\``).join(", ")
  }: ${error.message}`;
}

/** What a client sees of one event: a retry, then a dispatched event. */
export type Observation =
  | { kind: "retry"; value: number }
  | { kind: "event"; type: string; data: string; id: string };

/** The data a client reads for `data`: line breaks as LF, text well formed. */
export function expectedData(data: unknown): string {
  if (typeof data !== "string") return JSON.stringify(data);
  return data.replace(/\r\n|\r/g, "\n").toWellFormed();
}

/**
 * What a spec-conforming client observes of an accepted event, given the
 * last event id before it; `id` is the id it goes out with (the channel's,
 * or the event's own). Returns the last event id after it.
 */
export function expectObservations(
  event: SseEvent,
  lastId: string,
  id: string | undefined,
  out: Observation[],
): string {
  const after = id ?? lastId;
  if (event.retry !== undefined) {
    out.push({ kind: "retry", value: event.retry });
  }
  if (event.data !== undefined) {
    out.push({
      kind: "event",
      type: event.event || "message",
      data: expectedData(event.data),
      id: after,
    });
  }
  return after;
}

/** An observation, short enough for a figure. */
export function showObservation(o: Observation | undefined): string {
  if (o === undefined) return "nothing";
  const text = o.kind === "retry"
    ? `retry ${o.value}`
    : `${JSON.stringify(o.type)} id ${JSON.stringify(o.id)} data ${
      JSON.stringify(o.data)
    }`;
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** Whether two observations are the same. */
export function sameObservation(a: Observation, b: Observation): boolean {
  if (a.kind === "retry") return b.kind === "retry" && a.value === b.value;
  return b.kind === "event" && a.type === b.type && a.data === b.data &&
    a.id === b.id;
}
