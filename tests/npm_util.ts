// The npm package as a user gets it: built by `deno task npm`'s code, packed
// by `npm pack`, installed by `npm i` into a scratch project with the
// servers its README recipes use; and those recipes run under Node or Bun.
import { buildNpm } from "../tools/npm.ts";
import { within } from "./util.ts";
import { run } from "./runtime_util.ts";

/** The fetch-handler servers the README's Node recipes use, pinned. */
const SERVERS = ["srvx@1.0.8", "@hono/node-server@2.1.9", "typescript@5.9.3"];

/** A scratch project with the packed package installed; remove it after. */
export interface Project {
  dir: string;
  /** The tarball that `npm pack` made. */
  tarball: string;
  /** Runs a command in the project; its stdout. */
  run(command: string, args: string[]): Promise<string>;
  remove(): Promise<void>;
}

/** Builds, packs and installs the package into a new scratch project. */
export async function scratchProject(): Promise<Project> {
  const root = await Deno.makeTempDir({ prefix: "ssekit-npm-test-" });
  try {
    const built = await buildNpm(`${root}/package`);
    const packed = await run("npm", [
      "pack",
      built,
      "--pack-destination",
      root,
    ], root);
    const tarball = `${root}/${packed.trim().split("\n").at(-1)}`;
    const dir = `${root}/project`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(
      `${dir}/package.json`,
      JSON.stringify({ type: "module", private: true }),
    );
    await run("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      tarball,
      ...SERVERS,
    ], dir);
    await Deno.copyFile(
      new URL("npm_server.mjs", import.meta.url),
      `${dir}/npm_server.mjs`,
    );
    return {
      dir,
      tarball,
      run: (command, args) => run(command, args, dir),
      remove: () => Deno.remove(root, { recursive: true }),
    };
  } catch (error) {
    await Deno.remove(root, { recursive: true });
    throw error;
  }
}

/** A recipe server (tests/npm_server.mjs) running in a project. */
export interface RecipeServer {
  url: URL;
  stop(): Promise<void>;
}

/** Starts `npm_server.mjs` with `adapter` under `runtime`. */
export async function startRecipe(
  project: Project,
  runtime: "node" | "bun",
  adapter: "srvx" | "hono" | "bun",
): Promise<RecipeServer> {
  const child = new Deno.Command(runtime, {
    args: ["npm_server.mjs", adapter],
    cwd: project.dir,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    child.kill("SIGKILL");
    await child.status;
    await lines.cancel();
  };
  try {
    let text = "";
    await within(
      (async () => {
        while (!text.includes("\n")) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`${runtime} ${adapter} exited`);
          text += value;
        }
      })(),
      15_000,
      `${runtime} ${adapter} listening`,
    );
    const port = Number(text.split("\n")[0]);
    return { url: new URL(`http://127.0.0.1:${port}/`), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
