// ssekit against itself at an earlier commit, in one run: every scenario's
// ssekit rows, each round the old tree and this one back to back (which goes
// first alternates), each in a fresh process, with this tree's bench/ run
// against both libraries.
//
//   deno run -A bench/compare.ts [--against=<rev>] [--quick | --tiny]
//                                [--rounds=N] [--only=a,b]
//
// `--against` defaults to 51c6945, main before the second performance wave.
// Prints a table (new ÷ old per row, the median of each round's ratio; above
// 1 is faster or smaller), then a line naming each row more than 5% worse.
// Writes bench/results/compare.json.

import { parseArgs } from "node:util";
import { median } from "./_stats.ts";
import { type Figure, figures, spawn } from "./run.ts";
import { type Scenario, SCENARIOS, type Size } from "./scenario.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const RESULTS = new URL("./results/", import.meta.url).pathname;
const DEFAULT_AGAINST = "51c6945";
/** A row is "slower elsewhere" past this: new ÷ old below 0.95. */
const TOLERANCE = 0.95;

/**
 * A copy of the library at `rev` with this tree's bench/, deno.json and
 * deno.lock, so that both run the same scenarios; its scenario.ts path.
 */
async function oldTree(rev: string): Promise<{ dir: string; file: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ssekit-compare-" });
  const archive = new Deno.Command("git", {
    args: ["-C", ROOT, "archive", "--format=tar", rev],
    stdout: "piped",
  }).spawn();
  const untar = new Deno.Command("tar", {
    args: ["-x", "-C", dir],
    stdin: "piped",
  }).spawn();
  await archive.stdout.pipeTo(untar.stdin);
  const [archived, untarred] = await Promise.all([
    archive.status,
    untar.status,
  ]);
  if (!archived.success || !untarred.success) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`Cannot check out ${rev} with git archive`);
  }
  await Deno.remove(`${dir}/bench`, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}/bench`);
  for await (const entry of Deno.readDir(`${ROOT}bench`)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      await Deno.copyFile(
        `${ROOT}bench/${entry.name}`,
        `${dir}/bench/${entry.name}`,
      );
    }
  }
  for (const name of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(`${ROOT}${name}`, `${dir}/${name}`);
  }
  return { dir, file: `${dir}/bench/scenario.ts` };
}

export interface Comparison {
  row: string;
  unit: string;
  old: number;
  new: number;
  /** New ÷ old as a speed (or size) ratio: above 1 is better. */
  ratio: number;
  /** Each round's figure for the old tree and for this one, in order. */
  oldRounds: number[];
  newRounds: number[];
}

export async function compare(options: {
  against: string;
  size: Size;
  rounds: number;
  only?: Scenario[];
  log?: (line: string) => void;
}): Promise<Comparison[]> {
  const { against, size, rounds, log = () => {} } = options;
  const old = await oldTree(against);
  try {
    const out: Comparison[] = [];
    for (const scenario of options.only ?? SCENARIOS) {
      const values: { old: Figure[][]; new: Figure[][] } = { old: [], new: [] };
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0
          ? ["old", "new"] as const
          : ["new", "old"] as const;
        for (const tree of order) {
          const [result] = await spawn(
            scenario,
            ["ssekit"],
            size,
            tree === "old" ? old.file : undefined,
          );
          values[tree].push(figures(result));
        }
        log(`${scenario}: round ${round + 1} of ${rounds}`);
      }
      values.new[0].forEach((figure, i) => {
        const oldRounds = values.old.map((figures) => figures[i].value);
        const newRounds = values.new.map((figures) => figures[i].value);
        const ratios = newRounds.map((n, round) =>
          figure.higherIsBetter ? n / oldRounds[round] : oldRounds[round] / n
        );
        out.push({
          row: figure.row,
          unit: figure.unit,
          old: median(oldRounds),
          new: median(newRounds),
          ratio: median(ratios),
          oldRounds,
          newRounds,
        });
      });
    }
    return out;
  } finally {
    await Deno.remove(old.dir, { recursive: true });
  }
}

export function table(rows: Comparison[], against: string): string {
  const fmt = (n: number) =>
    n.toLocaleString("en-US", { maximumFractionDigits: n < 100 ? 1 : 0 });
  return [
    `| row | unit | ${against} | now | now ÷ then (above 1: better) |`,
    "| --- | --- | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.row} | ${r.unit} | ${fmt(r.old)} | ${fmt(r.new)} | ${
        r.ratio.toFixed(2)
      }× |`
    ),
  ].join("\n");
}

/** The line naming every row more than 5% worse than before. */
export function verdict(rows: Comparison[]): string {
  const worse = rows.filter((r) => r.ratio < TOLERANCE);
  return worse.length === 0
    ? `compare: all ${rows.length} rows within 5% or better`
    : `compare: ${worse.length} of ${rows.length} rows more than 5% worse: ${
      worse.map((r) => `${r.row} (${r.ratio.toFixed(2)}×)`).join("; ")
    }`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      against: { type: "string", default: DEFAULT_AGAINST },
      quick: { type: "boolean", default: false },
      tiny: { type: "boolean", default: false },
      rounds: { type: "string", default: "3" },
      only: { type: "string" },
    },
  });
  const only = values.only?.split(",") as Scenario[] | undefined;
  for (const scenario of only ?? []) {
    if (!SCENARIOS.includes(scenario)) throw new Error(`Unknown ${scenario}`);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `--rounds must be a positive integer, got ${values.rounds}`,
    );
  }
  const size: Size = values.tiny ? "tiny" : values.quick ? "quick" : "full";
  const rows = await compare({
    against: values.against,
    size,
    rounds,
    only,
    log: (line) => console.error(line),
  });
  console.log(table(rows, values.against));
  console.log(verdict(rows));
  await Deno.mkdir(RESULTS, { recursive: true });
  await Deno.writeTextFile(
    `${RESULTS}compare.json`,
    JSON.stringify({ against: values.against, size, rounds, rows }, null, 2) +
      "\n",
  );
  console.error("Wrote bench/results/compare.json");
}
