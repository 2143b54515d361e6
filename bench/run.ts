// Runs every scenario for every implementation, each in a fresh process
// (but the loopback latency, whose implementations take their samples in
// turn in one), and prints the tables, then a line of the targets missed:
// `deno task bench [--quick] [--only=a,b] [--readme] [--check]`.
//
//   --quick          smaller sizes, fewer rounds (about a minute)
//   --only=a,b       only these scenarios
//   --runs=N         N processes per implementation and scenario, in turn;
//                    each row is the one whose main figure is their median
//   --readme         also paste the tables into bench/README.md
//   --check          exit non-zero if a target is missed
//
// Progress goes to stderr. Results go to bench/results/latest.json and
// latest.md, and a chart of the ratios to bench/chart.svg (full runs).

import { parseArgs } from "node:util";
import { chart } from "./chart.ts";
import { IMPLS } from "./impls.ts";
import { type Scenario, SCENARIOS, type Size, SIZES } from "./scenario.ts";

const ALL = ["baseline", "coalesced", "ssekit", "hono"];
/** Coalescing holds events back, so it has no latency and no idle cost of its own. */
const PLAN: Record<Scenario, string[]> = {
  "stream": ALL,
  "push": ALL,
  "loopback-1": ALL,
  "loopback-50": ALL,
  "fanout": ALL,
  /** Hono has no broadcast, so no topics; the baseline walks every client. */
  "topics": ["baseline", "ssekit"],
  /** The bare stream is the floor for memory: it holds one event, no more. */
  "idle": ["bare", "baseline", "ssekit", "hono"],
  "latency": ["baseline", "ssekit", "hono"],
  "latency-loopback": ["baseline", "ssekit", "hono"],
};

/**
 * The rows whose implementations run in one process, their samples taken in
 * turn (scenario.ts says why), rather than each in a process of its own.
 */
const PAIRED: Scenario[] = ["latency-loopback"];

/** The rows measured in events (or deliveries) per second. */
export const THROUGHPUT: Scenario[] = [
  "stream",
  "push",
  "loopback-1",
  "loopback-50",
  "fanout",
];

const SCENARIO_FILE = new URL("./scenario.ts", import.meta.url).pathname;
const README = new URL("./README.md", import.meta.url).pathname;
const CHART = new URL("./chart.svg", import.meta.url).pathname;
const RESULTS = new URL("./results/", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
export type Result = Record<string, any> & { scenario: Scenario; impl: string };

export interface BenchResults {
  date: string;
  machine: string;
  deno: string;
  size: Size;
  rounds: number;
  /** Processes per implementation and scenario; each row is their median. */
  runs?: number;
  results: Result[];
}

export interface RunOptions {
  size: Size;
  only?: Scenario[];
  /** One process per implementation (true), or per scenario (tests). */
  fresh?: boolean;
  /** Processes per implementation and scenario (1). */
  runs?: number;
  /** Called with a line of progress. */
  log?: (line: string) => void;
}

/**
 * Runs one scenario in a fresh process for `impls`; `file` is the
 * scenario.ts to run (bench/compare.ts runs one in a copy of an older tree).
 */
export async function spawn(
  scenario: Scenario,
  impls: string[],
  size: Size,
  file = SCENARIO_FILE,
): Promise<Result[]> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      file,
      `--scenario=${scenario}`,
      `--impl=${impls.join(",")}`,
      `--size=${size}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (!success) {
    throw new Error(
      `${scenario} ${impls} failed:\n${out}${new TextDecoder().decode(stderr)}`,
    );
  }
  return out.trim().split("\n").slice(-impls.length).map((line) =>
    JSON.parse(line) as Result
  );
}

async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return `${navigator.hardwareConcurrency} × ${cpu}, ${Deno.build.os}`;
}

/** One figure of one scenario's result, and which way is better. */
export interface Figure {
  row: string;
  value: number;
  unit: string;
  higherIsBetter: boolean;
}

/** The figures a scenario's result holds, its main one first. */
export function figures(result: Result): Figure[] {
  const title = TITLES[result.scenario];
  if (title !== undefined) {
    return [{
      row: title,
      value: result.perSecond,
      unit: "events/s",
      higherIsBetter: true,
    }];
  }
  switch (result.scenario) {
    case "topics":
      return (result.stages as TopicStage[]).map((stage) => ({
        row: `topic send, ${stage.clients.toLocaleString("en-US")} clients`,
        value: stage.medianUs,
        unit: "µs median",
        higherIsBetter: false,
      }));
    case "idle":
      return (result.stages as IdleStage[]).map((stage) => ({
        row: `idle, ${stage.connections.toLocaleString("en-US")} connections`,
        value: stage.heapPerConnection,
        unit: "JS heap B/conn",
        higherIsBetter: false,
      }));
    case "latency":
      return [{
        row: "latency in process, median",
        value: result.medianUs,
        unit: "µs",
        higherIsBetter: false,
      }];
    case "latency-loopback":
      return [
        {
          row: "latency over loopback, median",
          value: result.medianUs,
          unit: "µs",
          higherIsBetter: false,
        },
        {
          row: "latency over loopback, p99",
          value: result.p99Us,
          unit: "µs",
          higherIsBetter: false,
        },
      ];
    default:
      return [];
  }
}

/**
 * Of one implementation's results from several runs, the one whose main
 * figure is the median, with every run's main figure as `runFigures`.
 */
function medianRun(runs: Result[]): Result {
  const main = (result: Result) => figures(result)[0]?.value ?? 0;
  const sorted = [...runs].sort((a, b) => main(a) - main(b));
  return {
    ...sorted[Math.floor(sorted.length / 2)],
    runFigures: runs.map(main),
  };
}

export async function runBench(options: RunOptions): Promise<BenchResults> {
  const { size, fresh = true, runs = 1, log = () => {} } = options;
  const results: Result[] = [];
  for (const scenario of options.only ?? SCENARIOS) {
    const impls = PLAN[scenario];
    const groups = fresh && !PAIRED.includes(scenario)
      ? impls.map((impl) => [impl])
      : [impls];
    const byImpl = new Map<string, Result[]>(impls.map((impl) => [impl, []]));
    for (let run = 0; run < runs; run++) {
      // Each run starts with another implementation, so that none always
      // follows the same one.
      const first = run % groups.length;
      for (const group of [...groups.slice(first), ...groups.slice(0, first)]) {
        const start = performance.now();
        for (const result of await spawn(scenario, group, size)) {
          byImpl.get(result.impl)!.push(result);
        }
        log(
          `${scenario} ${group.join(",")}${
            runs > 1 ? ` (run ${run + 1} of ${runs})` : ""
          }: ${Math.round(performance.now() - start)} ms`,
        );
      }
    }
    for (const impl of impls) results.push(medianRun(byImpl.get(impl)!));
  }
  return {
    date: new Date().toISOString(),
    machine: await machine(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    size,
    rounds: SIZES[size].rounds,
    runs,
    results,
  };
}

function find(bench: BenchResults, scenario: Scenario, impl: string) {
  return bench.results.find((r) => r.scenario === scenario && r.impl === impl);
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const ratio = (value: number, digits = 2) => `${fmt(value, digits)}×`;

export const TITLES: Partial<Record<Scenario, string>> = {
  "stream": "in process: N events written without awaiting",
  "push": "in process: `await write()` per event",
  "loopback-1": "loopback HTTP/1.1, 1 connection",
  "loopback-50": "loopback HTTP/1.1, 50 connections",
  "fanout": "fan-out (deliveries), through `SseChannel` for ssekit",
};

/** A target from the issue, checked against one run. */
export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

export function targets(bench: BenchResults): Target[] {
  const out: Target[] = [];
  const speed = (scenario: Scenario, impl: string) =>
    find(bench, scenario, impl)?.perSecond as number | undefined;
  const against = (
    target: string,
    scenario: Scenario,
    impl: string,
    minimum: number,
  ) => {
    const ours = speed(scenario, "ssekit"), theirs = speed(scenario, impl);
    if (ours === undefined || theirs === undefined) return;
    out.push({
      target,
      measured: ratio(ours / theirs),
      met: ours / theirs >= minimum,
    });
  };
  against("push: ≥ 3× the per-event baseline", "push", "baseline", 3);
  against(
    "loopback, 1 connection: ≥ 3× the baseline",
    "loopback-1",
    "baseline",
    3,
  );
  against("fan-out: ≥ 2× the encode-once baseline", "fanout", "baseline", 2);
  for (const scenario of THROUGHPUT) {
    against(
      `${scenario}: ≥ 0.8× the coalesced limit`,
      scenario,
      "coalesced",
      0.8,
    );
  }
  const topics = find(bench, "topics", "ssekit")?.stages as
    | TopicStage[]
    | undefined;
  if (topics !== undefined && topics.length > 1) {
    const [first, last] = [topics[0], topics.at(-1)!];
    const growth = last.medianUs / first.medianUs;
    out.push({
      target: `topic send: flat from ${fmt(first.clients)} to ${
        fmt(last.clients)
      } clients (≤ 1.5×)`,
      measured: `${ratio(growth)} (${fmt(first.medianUs, 1)} → ${
        fmt(last.medianUs, 1)
      } µs)`,
      met: growth <= 1.5,
    });
  }
  const ours = find(bench, "idle", "ssekit"),
    bare = find(bench, "idle", "bare");
  if (ours && bare) {
    for (const [i, stage] of (ours.stages as IdleStage[]).entries()) {
      const b = (bare.stages as IdleStage[])[i];
      const heap = stage.heapPerConnection - b.heapPerConnection;
      out.push({
        target: `idle, ${
          fmt(stage.connections)
        }: JS heap ≤ a bare stream's + 1 KB`,
        measured: `${heap >= 0 ? "+" : ""}${fmt(heap)} B`,
        met: heap <= 1024,
      });
    }
  }
  const local = find(bench, "latency", "ssekit");
  if (local) {
    out.push({
      target: "latency: idle client gets the event in the same turn",
      measured: `${fmt(local.sameTurn * 100)}% of ${local.samples}, median ${
        fmt(local.medianUs, 1)
      } µs`,
      met: local.sameTurn === 1,
    });
  }
  const wire = find(bench, "latency-loopback", "ssekit");
  const wireBase = find(bench, "latency-loopback", "baseline");
  if (wire && wireBase) {
    for (const [what, key] of [["median", "medianUs"], ["p99", "p99Us"]]) {
      out.push({
        target: `latency over loopback, ${what}: ≤ 1.1× the baseline`,
        measured: `${ratio(wire[key] / wireBase[key])} (${fmt(wire[key])} vs ${
          fmt(wireBase[key])
        } µs)`,
        met: wire[key] <= 1.1 * wireBase[key],
      });
    }
  }
  return out;
}

export interface TopicStage {
  clients: number;
  medianUs: number;
  p99Us: number;
}

export interface IdleStage {
  connections: number;
  heapPerConnection: number;
  rssPerConnection: number;
}

export function markdown(bench: BenchResults): string {
  const lines = [
    `${bench.machine}; Deno ${bench.deno}; ${bench.size} sizes, median of ${bench.rounds} round(s)${
      SIZES[bench.size].warmUp ? " after a warm-up" : ""
    }${
      (bench.runs ?? 1) > 1
        ? `, and of ${bench.runs} processes per implementation (the median one's row)`
        : ""
    }; ${
      bench.date.slice(0, 10)
    }. Ratios are to the per-event baseline of the same run.`,
    "",
    "| scenario | implementation | events/s | ns/event | chunks/conn | × baseline |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ];
  for (const scenario of SCENARIOS) {
    const title = TITLES[scenario];
    const base = find(bench, scenario, "baseline");
    if (title === undefined || base === undefined) continue;
    for (const impl of PLAN[scenario]) {
      const r = find(bench, scenario, impl);
      if (r === undefined) continue;
      lines.push(
        `| ${title} | ${IMPLS[impl].label} | ${fmt(r.perSecond)} | ${
          fmt(r.nsPer)
        } | ${fmt(r.chunks)} | ${ratio(r.perSecond / base.perSecond)} |`,
      );
    }
  }
  const topicBase = find(bench, "topics", "baseline");
  if (topicBase) {
    lines.push(
      "",
      "| topic send, one topic per client | implementation | clients | median µs/send | p99 µs/send | × the first size |",
      "| --- | --- | ---: | ---: | ---: | ---: |",
    );
    for (const impl of PLAN.topics) {
      const stages = find(bench, "topics", impl)?.stages as TopicStage[];
      for (const stage of stages ?? []) {
        lines.push(
          `| one event to one topic per turn | ${IMPLS[impl].label} | ${
            fmt(stage.clients)
          } | ${fmt(stage.medianUs, 1)} | ${fmt(stage.p99Us, 1)} | ${
            ratio(stage.medianUs / stages[0].medianUs)
          } |`,
        );
      }
    }
  }
  const idleBare = find(bench, "idle", "bare");
  if (idleBare) {
    lines.push(
      "",
      "| idle connections | implementation | JS heap B/conn | RSS B/conn | heap − bare stream | RSS × bare stream |",
      "| ---: | --- | ---: | ---: | ---: | ---: |",
    );
    for (const [i, b] of (idleBare.stages as IdleStage[]).entries()) {
      for (const impl of PLAN.idle) {
        const stage = (find(bench, "idle", impl)?.stages as IdleStage[])?.[i];
        if (stage === undefined) continue;
        const heap = stage.heapPerConnection - b.heapPerConnection;
        lines.push(
          `| ${fmt(stage.connections)} | ${IMPLS[impl].label} | ${
            fmt(stage.heapPerConnection)
          } | ${fmt(stage.rssPerConnection)} | ${heap >= 0 ? "+" : ""}${
            fmt(heap)
          } | ${ratio(stage.rssPerConnection / b.rssPerConnection, 3)} |`,
        );
      }
    }
  }
  if (
    find(bench, "latency", "baseline") ||
    find(bench, "latency-loopback", "baseline")
  ) {
    lines.push(
      "",
      "| latency, write to idle client | implementation | median µs | p99 µs | before a 0 ms timer |",
      "| --- | --- | ---: | ---: | ---: |",
    );
    for (const scenario of ["latency", "latency-loopback"] as const) {
      for (const impl of PLAN[scenario]) {
        const r = find(bench, scenario, impl);
        if (r === undefined) continue;
        lines.push(
          `| ${
            scenario === "latency"
              ? "in process, to the reader"
              : "loopback, ping request to event"
          } | ${IMPLS[impl].label} | ${fmt(r.medianUs, 1)} | ${
            fmt(r.p99Us, 1)
          } | ${
            r.sameTurn === undefined ? "–" : `${fmt(r.sameTurn * 100)}%`
          } |`,
        );
      }
    }
  }
  const checks = targets(bench);
  if (checks.length > 0) {
    lines.push("", "| target | measured | met |", "| --- | ---: | :-: |");
    for (const t of checks) {
      lines.push(
        `| ${t.target} | ${t.measured} | ${t.met ? "yes" : "**no**"} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

const START = "<!-- results:start -->";
const END = "<!-- results:end -->";

async function pasteIntoReadme(table: string): Promise<void> {
  const readme = await Deno.readTextFile(README);
  const from = readme.indexOf(START), to = readme.indexOf(END);
  if (from === -1 || to === -1) throw new Error(`No ${START} in ${README}`);
  await Deno.writeTextFile(
    README,
    `${readme.slice(0, from + START.length)}\n\n${table}\n${readme.slice(to)}`,
  );
  // The tables as `deno fmt --check` wants them.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", README] })
    .output();
}

/** The line that says which targets were missed, if any. */
export function summary(checks: Target[]): string {
  const missed = checks.filter((t) => !t.met);
  return missed.length === 0
    ? `targets: all ${checks.length} met`
    : `targets: ${missed.length} of ${checks.length} missed: ${
      missed.map((t) => `${t.target} (${t.measured})`).join("; ")
    }`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      readme: { type: "boolean", default: false },
      check: { type: "boolean", default: false },
      only: { type: "string" },
      runs: { type: "string", default: "1" },
    },
  });
  const only = values.only?.split(",") as Scenario[] | undefined;
  for (const scenario of only ?? []) {
    if (!SCENARIOS.includes(scenario)) throw new Error(`Unknown ${scenario}`);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(
      `--runs must be a positive integer, got ${values.runs}`,
    );
  }
  const bench = await runBench({
    size: values.quick ? "quick" : "full",
    runs,
    only,
    log: (line) => console.error(line),
  });
  const table = markdown(bench);
  const checks = targets(bench);
  console.log(table);
  console.log(summary(checks));
  await Deno.mkdir(RESULTS, { recursive: true });
  await Deno.writeTextFile(
    `${RESULTS}latest.json`,
    JSON.stringify({ ...bench, targets: checks }, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${RESULTS}latest.md`, table);
  const written = ["bench/results/latest.json", "bench/results/latest.md"];
  if (only === undefined) {
    await Deno.writeTextFile(CHART, await chart(bench));
    written.push("bench/chart.svg");
  }
  if (values.readme) {
    await pasteIntoReadme(table);
    written.push("bench/README.md");
  }
  console.error(`Wrote ${written.join(", ")}`);
  if (values.check && checks.some((t) => !t.met)) Deno.exit(1);
}
