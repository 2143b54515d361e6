// A cross-check for the in-process rows: two implementations in one
// process, each round one of each back to back (which goes first
// alternates), with a full GC before each. Whatever the machine does during
// the run (another VM's load, the CPU's clock) then hits both alike, where
// `deno task bench`, with a fresh process per implementation, sees the same
// code run up to twice as fast in one process as in the next. The price:
// both share the JIT's feedback for Deno's own stream code, so this is a
// check on the table's ratio, not a replacement for it.
//
//   deno run -A --v8-flags=--expose-gc bench/interleave.ts
//     [--scenario=fanout|stream|push] [--impls=coalesced,ssekit]
//     [--rounds=200] [--size=full|quick|tiny]
//
// Prints one JSON line: each implementation's median round, and the median
// of the rounds' speed ratios (the second implementation ÷ the first; above
// 1, the second is faster).

import { parseArgs } from "node:util";
import { median } from "./_stats.ts";
import { type Impl, IMPLS } from "./impls.ts";
import {
  fanoutRound,
  inProcessRound,
  type Round,
  type Size,
  SIZES,
} from "./scenario.ts";

const ROUNDS = {
  fanout: (impl, size) => fanoutRound(impl, size),
  stream: (impl, size) => inProcessRound(impl, size, false),
  push: (impl, size) => inProcessRound(impl, size, true),
} satisfies Record<string, (impl: Impl, size: Size) => Promise<Round>>;

declare const gc: (() => void) | undefined;

export interface Interleaved {
  scenario: string;
  impls: [string, string];
  rounds: number;
  medianMs: [number, number];
  /** The median of the rounds' first ms ÷ second ms: the second's speed. */
  ratio: number;
}

export async function interleave(
  scenario: keyof typeof ROUNDS,
  names: [string, string],
  rounds: number,
  size: Size,
): Promise<Interleaved> {
  if (typeof gc !== "function") {
    throw new Error("Run with --v8-flags=--expose-gc");
  }
  const impls = names.map((name) => {
    const impl = IMPLS[name];
    if (impl === undefined) throw new Error(`Unknown impl ${name}`);
    return impl;
  });
  const run = ROUNDS[scenario];
  const ms: [number[], number[]] = [[], []];
  const ratios: number[] = [];
  // A tenth of the rounds, and at least one, warm up.
  const warmUp = Math.max(1, Math.round(rounds / 10));
  for (let round = -warmUp; round < rounds; round++) {
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    const took = [0, 0];
    for (const i of order) {
      gc();
      took[i] = (await run(impls[i], size)).ms;
    }
    if (round < 0) continue;
    ms[0].push(took[0]);
    ms[1].push(took[1]);
    ratios.push(took[0] / took[1]);
  }
  return {
    scenario,
    impls: names,
    rounds,
    medianMs: [median(ms[0]), median(ms[1])],
    ratio: median(ratios),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenario: { type: "string", default: "fanout" },
      impls: { type: "string", default: "coalesced,ssekit" },
      rounds: { type: "string", default: "200" },
      size: { type: "string", default: "full" },
    },
  });
  const scenario = values.scenario as keyof typeof ROUNDS;
  if (!(scenario in ROUNDS)) {
    throw new Error(
      `--scenario must be one of ${
        Object.keys(ROUNDS).join(", ")
      }, got ${scenario}`,
    );
  }
  const names = values.impls!.split(",");
  if (names.length !== 2) {
    throw new Error(
      `--impls must name two implementations, got ${values.impls}`,
    );
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `--rounds must be a positive integer, got ${values.rounds}`,
    );
  }
  if (!(values.size! in SIZES)) throw new Error(`Unknown size ${values.size}`);
  const result = await interleave(
    scenario,
    names as [string, string],
    rounds,
    values.size as Size,
  );
  console.log(JSON.stringify(result));
}
