// The soak suite: `deno task soak [--short] [--only=a,b]`. Every scenario
// runs its servers and clients as separate processes, bounded in count and
// time, prints what it measured, and checks each figure against a stated
// threshold. Exits non-zero if any check fails. `--short` is the CI form.
// Results go to soak/results/latest.json.

import { parseArgs } from "node:util";
import type { Report, Scenario, SoakOptions } from "./_util.ts";

/** Every scenario, by name, in the order they run. */
const SCENARIOS: Record<string, () => Promise<{ default: Scenario }>> = {
  "many-clients": () => import("./many_clients.ts"),
  "churn": () => import("./churn.ts"),
  "slow-clients": () => import("./slow_clients.ts"),
  "faults": () => import("./faults.ts"),
  "hostile-input": () => import("./hostile_input.ts"),
  "encode-fuzz": () => import("./encode_fuzz.ts"),
  "slowloris": () => import("./slowloris.ts"),
};

const RESULTS = new URL("./results/", import.meta.url);

const { values } = parseArgs({
  args: Deno.args,
  options: { short: { type: "boolean" }, only: { type: "string" } },
});
const only = values.only?.split(",");
for (const name of only ?? []) {
  if (!Object.hasOwn(SCENARIOS, name)) {
    console.error(
      `Unknown scenario ${JSON.stringify(name)}; there are: ${
        Object.keys(SCENARIOS).join(", ")
      }`,
    );
    Deno.exit(2);
  }
}
const options: SoakOptions = {
  short: values.short ?? false,
  log: (line) => console.error(`  ${line}`),
};

const reports: Report[] = [];
let failed = 0;
const started = performance.now();
for (const [name, load] of Object.entries(SCENARIOS)) {
  if (only && !only.includes(name)) continue;
  console.error(`${name}: running${options.short ? " (short)" : ""}`);
  let report: Report;
  try {
    report = await (await load()).default(options);
  } catch (error) {
    report = {
      scenario: name,
      summary: "did not finish",
      seconds: 0,
      figures: {},
      checks: [{
        name: "the scenario ran to its end",
        value: String((error as Error)?.stack ?? error),
        limit: "no error",
        pass: false,
      }],
    };
  }
  reports.push(report);
  failed += report.checks.filter((check) => !check.pass).length;
  console.log(
    `\n## ${report.scenario}: ${report.summary} (${
      report.seconds.toFixed(0)
    } s)\n`,
  );
  for (const [key, value] of Object.entries(report.figures)) {
    console.log(`- ${key}: ${value}`);
  }
  if (Object.keys(report.figures).length > 0) console.log();
  console.log("| check | measured | limit | |\n| --- | ---: | ---: | --- |");
  for (const check of report.checks) {
    console.log(
      `| ${check.name} | ${check.value} | ${check.limit} | ${
        check.pass ? "pass" : "**FAIL**"
      } |`,
    );
  }
}
const checks = reports.reduce((n, report) => n + report.checks.length, 0);
const seconds = (performance.now() - started) / 1000;
await Deno.mkdir(RESULTS, { recursive: true });
await Deno.writeTextFile(
  new URL("latest.json", RESULTS),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      short: options.short,
      deno: Deno.version.deno,
      seconds,
      reports,
    },
    null,
    2,
  ) + "\n",
);
console.log(
  `\nsoak: ${checks - failed} of ${checks} checks passed in ${
    seconds.toFixed(0)
  } s${failed > 0 ? `, ${failed} FAILED` : ""} (soak/results/latest.json)`,
);
Deno.exit(failed > 0 ? 1 : 0);
