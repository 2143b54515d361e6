// A strict checker of ssekit's event-stream wire format, for the fuzz
// scenarios. Stricter than a client: a client accepts any line, while
// ssekit writes only `field: value` lines, `:` comments and blank lines,
// with LF line ends, so anything else means something leaked through.

/** What {@linkcode checkWire} found. */
export interface WireReport {
  /** Event blocks seen (ended by a blank line). */
  blocks: number;
  /** Comment lines. */
  comments: number;
  /** What is wrong, at most `maxViolations` of them. */
  violations: string[];
  /** How many violations in all. */
  violationCount: number;
}

const FIELD = /^(event|data|id|retry): (.*)$/s;
/** C0 controls and DEL: never in an event name or an id on ssekit's wire. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The length of `bytes` without an unfinished UTF-8 sequence at its end. */
function wholeChars(bytes: Uint8Array): number {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const byte = bytes[bytes.length - back];
    if (byte < 0x80) return bytes.length; // ASCII: nothing unfinished
    if (byte >= 0xc0) {
      const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return needed > back ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}

/** Shows a line in a message: quoted, and cut if long. */
function show(line: string): string {
  const quoted = JSON.stringify(line);
  return quoted.length > 70 ? `${quoted.slice(0, 66)}..."` : quoted;
}

/**
 * Checks an event stream's bytes. `complete` says the server ended the
 * stream (so its last block must be ended by a blank line); when the reader
 * stopped early, an unfinished last line and block are not faults.
 *
 * Rules: valid UTF-8; no CR anywhere (ssekit ends lines with LF, and a CR
 * inside a value would be a line break to a client); every line is blank,
 * a comment (`:` first), or `event: `, `data: `, `id: ` or `retry: ` and a
 * value; `event` and `id` values hold no control character; `retry` is
 * digits; a block has at most one `event`, `id` and `retry`, and `event`
 * only with `data`; every block with a field ends with a blank line.
 */
export function checkWire(
  bytes: Uint8Array,
  complete: boolean,
  maxViolations = 5,
): WireReport {
  const report: WireReport = {
    blocks: 0,
    comments: 0,
    violations: [],
    violationCount: 0,
  };
  const fault = (message: string) => {
    report.violationCount++;
    if (report.violations.length < maxViolations) {
      report.violations.push(message);
    }
  };
  let text: string;
  try {
    // A stream cut by the reader may end inside a character: leave it out.
    text = UTF8.decode(complete ? bytes : bytes.subarray(0, wholeChars(bytes)));
  } catch {
    fault("the stream is not valid UTF-8");
    return report;
  }
  if (text.includes("\r")) fault("the stream holds a CR");
  const lines = text.split("\n");
  const tail = lines.pop()!; // after the last LF: an unfinished line
  if (complete && tail !== "") fault(`unterminated last line ${show(tail)}`);
  let fields = new Set<string>();
  let open = false; // a block with a field, not yet ended
  for (const line of lines) {
    if (line === "") {
      if (open) {
        if (fields.has("event") && !fields.has("data")) {
          fault("a named event without data");
        }
        report.blocks++;
      }
      fields = new Set();
      open = false;
      continue;
    }
    if (line.startsWith(":")) {
      report.comments++;
      continue;
    }
    const match = FIELD.exec(line);
    if (match === null) {
      fault(`not a field line: ${show(line)}`);
      continue;
    }
    const [, field, value] = match;
    open = true;
    if (field !== "data" && fields.has(field)) {
      fault(`a second \`${field}\` in one block: ${show(line)}`);
    }
    fields.add(field);
    if ((field === "event" || field === "id") && CONTROL.test(value)) {
      fault(`a control character in \`${field}\`: ${show(line)}`);
    }
    if (field === "retry" && !/^\d+$/.test(value)) {
      fault(`\`retry\` is not digits: ${show(line)}`);
    }
  }
  if (complete && open) fault("the last block is not ended by a blank line");
  return report;
}
