// Internal to ssekit: the checks that sse.ts, channel.ts and redis.ts share,
// worded alike. mod.ts exports none of it.

/** setTimeout and setInterval take at most this many milliseconds. */
export const MAX_TIMER_DELAY = 2_147_483_647;

/** Whether a text has a CR or an LF, either of which ends a line on the wire. */
export const HAS_LINE_BREAK = /[\r\n]/;
const HAS_LINE_BREAK_OR_NUL = /[\r\n\0]/;

/** Quotes and shortens a bad value so that a message can show it. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 56)}..."` : quoted;
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return value.toString();
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return "an object";
  return String(value);
}

/** What an integer check says it wanted, unless the caller words it. */
function integerRule(min: number, max: number): string {
  if (max !== Number.MAX_SAFE_INTEGER) {
    return `an integer from ${min} to ${max}`;
  }
  if (min === 0) return "a non-negative integer";
  if (min === 1) return "a positive integer";
  return `an integer of at least ${min}`;
}

/** Bounds and wording for {@linkcode checkInteger}. */
export interface IntegerRule {
  /** @default {0} */
  min?: number;
  /** @default {Number.MAX_SAFE_INTEGER} */
  max?: number;
  /** What the value must be, as the message says it ("milliseconds from 1 to 10"). */
  rule?: string;
}

/**
 * Returns `value` if it is a safe integer within the bounds; otherwise
 * throws a `RangeError` that names the action, the field and the value:
 * "Cannot create SseChannel: \`historySize\` must be a non-negative integer,
 * got -1".
 */
export function checkInteger(
  action: string,
  name: string,
  value: unknown,
  { min = 0, max = Number.MAX_SAFE_INTEGER, rule }: IntegerRule = {},
): number {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < min ||
    value > max
  ) {
    throw new RangeError(
      `${action}: \`${name}\` must be ${rule ?? integerRule(min, max)}, got ${
        describe(value)
      }`,
    );
  }
  return value;
}

/**
 * Throws a `TypeError` unless `value` can be one line of the wire: a line
 * break (or, with `nul`, a NUL) would end it early ("Cannot encode event:
 * \`event\` contains a line break: …"), and a lone surrogate would reach the
 * client as U+FFFD, never to match again (as an id on resume, say).
 */
export function checkOneLine(
  action: string,
  name: string,
  value: string,
  nul = false,
): void {
  if ((nul ? HAS_LINE_BREAK_OR_NUL : HAS_LINE_BREAK).test(value)) {
    throw new TypeError(
      `${action}: \`${name}\` contains a line break${nul ? " or NUL" : ""}: ${
        describe(value)
      }`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `${action}: \`${name}\` contains a lone surrogate, which UTF-8 cannot carry: ${
        describe(value)
      }`,
    );
  }
}
