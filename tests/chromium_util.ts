// Debian's Chromium, headless, driven by playwright-core (which downloads
// no browser of its own).
import { type Browser, chromium } from "playwright-core";

/** Debian's chromium, or the first Chromium on PATH; `undefined` if none. */
function findChromium(): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  const candidates = [
    Deno.env.get("CHROMIUM_PATH"),
    "/usr/bin/chromium",
    ...["chromium", "chromium-browser"].flatMap((name) =>
      dirs.map((dir) => `${dir}/${name}`)
    ),
  ];
  return candidates.find((path) => {
    try {
      return path !== undefined && Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

/** The Chromium the browser tests drive; `undefined` if there is none. */
export const CHROMIUM: string | undefined = findChromium();

/** How to get one, for the message of a test that needs it. */
export const INSTALL_CHROMIUM =
  "install Debian's `chromium` (.ci/run does, with apt), or set CHROMIUM_PATH";

/**
 * Launches headless Chromium with nothing of its own running in the
 * background (no sync, no updates, no QUIC); `args` adds flags.
 */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
  });
}
