/**
 * Reads `deno test` output on stdin, passes it through, and ends with the
 * totals on a line of their own, `N passed, N failed[, N skipped]`, which CI
 * reads. Exits non-zero if a test failed or no summary was seen (a crash).
 *
 * @module
 */

// deno test colours its output even into a pipe.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const SUMMARY =
  /(?:^|\s)(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/;

let tail = "";
let summary: RegExpMatchArray | null = null;
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  await Deno.stdout.write(chunk);
  tail += decoder.decode(chunk, { stream: true });
  const lines = tail.split("\n");
  tail = lines.pop() ?? "";
  for (const line of lines) {
    summary = line.replace(ANSI, "").match(SUMMARY) ?? summary;
  }
}
summary = tail.replace(ANSI, "").match(SUMMARY) ?? summary;

if (summary === null) {
  console.log("0 passed, 1 failed (deno test printed no summary)");
  Deno.exit(1);
}
const [, verdict, passed, failed, ignored] = summary;
console.log(
  `${passed} passed, ${failed} failed${ignored ? `, ${ignored} skipped` : ""}`,
);
Deno.exit(verdict === "ok" && failed === "0" ? 0 : 1);
