// Shared by the soak scenarios: their report shape, pass/fail checks, and
// processes (servers and clients) started and read line by line.

/** One pass/fail line of a scenario: what was measured against what limit. */
export interface Check {
  /** What is checked, as a reader says it: "every client got every event". */
  name: string;
  /** What was measured, with its unit. */
  value: string;
  /** The threshold, with its unit: "≤ 1.5 KiB", "= 0". */
  limit: string;
  pass: boolean;
}

/** What a scenario reports. */
export interface Report {
  scenario: string;
  /** What was run, in one line: "10,000 clients × 20 events". */
  summary: string;
  seconds: number;
  /** Figures worth printing that are not checks (rates, sizes). */
  figures: Record<string, string>;
  checks: Check[];
}

/** How big a run is: `short` for CI (a few minutes in all), else full. */
export interface SoakOptions {
  short: boolean;
  /** Progress lines, to stderr. */
  log: (line: string) => void;
}

/** A soak scenario: runs, bounded in count and time, and reports. */
export type Scenario = (options: SoakOptions) => Promise<Report>;

/** A check that `value` is at most `limit`. */
export function atMost(
  name: string,
  value: number,
  limit: number,
  unit = "",
): Check {
  return {
    name,
    value: `${format(value)}${unit}`,
    limit: `≤ ${format(limit)}${unit}`,
    pass: value <= limit,
  };
}

/** A check that `value` is at least `limit`. */
export function atLeast(
  name: string,
  value: number,
  limit: number,
  unit = "",
): Check {
  return {
    name,
    value: `${format(value)}${unit}`,
    limit: `≥ ${format(limit)}${unit}`,
    pass: value >= limit,
  };
}

/** A check that `value` is exactly `expected`. */
export function equals(
  name: string,
  value: number | string | boolean,
  expected: number | string | boolean,
): Check {
  const show = (v: number | string | boolean) =>
    typeof v === "number" ? format(v) : String(v);
  return {
    name,
    value: show(value),
    limit: `= ${show(expected)}`,
    pass: value === expected,
  };
}

/** 12345.678 → "12,346"; 1.2345 → "1.23". */
export function format(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** A child process whose output is read as lines. */
export class Proc {
  readonly child: Deno.ChildProcess;
  /** Every line of stdout and stderr so far, in order. */
  readonly lines: string[] = [];
  readonly exited: Promise<Deno.CommandStatus>;
  #reading: Promise<void>[];
  #waiters = new Set<() => void>();

  /** Starts `deno <args>` (or `command` with `args`). */
  constructor(
    args: string[],
    options: { command?: string; env?: Record<string, string> } = {},
  ) {
    this.child = new Deno.Command(options.command ?? Deno.execPath(), {
      args,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reading = [this.child.stdout, this.child.stderr].map((stream) =>
      this.#read(stream)
    );
    this.exited = this.child.status.then(async (status) => {
      await Promise.all(this.#reading);
      return status;
    });
  }

  async #read(stream: ReadableStream<Uint8Array<ArrayBuffer>>): Promise<void> {
    let tail = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (tail + text).split("\n");
      tail = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters) wake();
    }
    if (tail !== "") this.lines.push(tail);
    for (const wake of this.#waiters) wake();
  }

  /**
   * Resolves with the first line matching `pattern`; rejects after `ms`
   * milliseconds, or if the process exits first.
   */
  async waitFor(pattern: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    let exited = false;
    this.exited.then(() => exited = true);
    for (;;) {
      const line = this.lines.find((line) => pattern.test(line));
      if (line !== undefined) return line;
      if (exited || Date.now() > deadline) {
        throw new Error(
          `No line matching ${pattern} ${
            exited ? "before exit" : `in ${ms} ms`
          }:\n` +
            this.lines.slice(-20).join("\n"),
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, 50);
        this.#waiters.add(done);
      });
    }
  }

  /** Sends `signal` if the process still runs. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // It has exited.
    }
  }

  /** Kills it (SIGKILL) if still running, and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
    this.kill("SIGKILL");
    return await this.exited;
  }
}

/** `deno run` arguments for a file next to this one. */
export function script(file: string, ...args: string[]): string[] {
  return [
    "run",
    "-A",
    "--v8-flags=--expose-gc",
    new URL(file, import.meta.url).pathname,
    ...args,
  ];
}

/** Runs a client process to its end and parses the JSON it prints last. */
export async function runClient<T>(args: string[]): Promise<T> {
  const proc = new Proc(args);
  const status = await proc.exited;
  const last = proc.lines.filter((line) => line.startsWith("{")).at(-1);
  if (!status.success || last === undefined) {
    throw new Error(
      `Client failed (${status.code}):\n${proc.lines.slice(-20).join("\n")}`,
    );
  }
  return JSON.parse(last) as T;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { freePort } from "../tests/util.ts";
