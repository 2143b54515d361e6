// Other runtimes for the cross-runtime tests: commands run to completion,
// the version of one on PATH, Node as a requirement, and the library
// bundled by `deno bundle` as a user of another runtime would load it.
import { needs } from "./util.ts";

/** Runs `command` to completion; its stdout. Throws with its output if it fails. */
export async function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<string> {
  const out = await new Deno.Command(command, { args, cwd }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed:\n${text}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

/** The version line of `command`, or "" if it cannot run here. */
export async function version(command: string): Promise<string> {
  try {
    return (await run(command, ["--version"])).trim();
  } catch {
    return "";
  }
}

/** The major version of the `node` on PATH; 0 if there is none. */
export const NODE_MAJOR: number = Number(
  (await version("node")).match(/^v(\d+)\./)?.[1] ?? 0,
);

/** Node 20+ as what a test needs (see `needs`). */
export function needsNode(what: string): ReturnType<typeof needs> {
  return needs(what, { "node 20+": NODE_MAJOR >= 20 }, "put Node 20+ on PATH");
}

/**
 * Bundles the library file `entry` (relative to the repository) into one
 * ES module with `deno bundle`, as a browser or Node loads it, and gives
 * its path to `fn`; removes it after.
 */
export async function withBundle<T>(
  entry: string,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/${entry.replace(/\.ts$/, ".js")}`;
    await run(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "-o",
      path,
      new URL(`../${entry}`, import.meta.url).pathname,
    ]);
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
