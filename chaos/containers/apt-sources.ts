/**
 * Reads the Debian mirror and release from this machine's own apt configuration, so the image is
 * built from the mirror the machine already uses (no host is hard-coded). Both formats are read:
 * one-line entries in /etc/apt/sources.list and sources.list.d/*.list ("deb [options] URI suite
 * components"), and deb822 stanzas in sources.list.d/*.sources (Types, URIs, Suites, Components).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface AptSource {
  readonly uri: string;
  readonly suites: readonly string[];
  readonly components: readonly string[];
  /** The file the entry came from, for error messages. */
  readonly file: string;
}

/** Parses one-line entries ("deb [arch=amd64] http://host/debian bookworm main contrib"). */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/#.*/, "").trim();
    if (line === "") continue;
    const withoutOptions = line.replace(/\[[^\]]*\]/, " ");
    const [type, uri, suite, ...components] = withoutOptions.split(/\s+/);
    if (type !== "deb" || uri === undefined || suite === undefined) continue;
    sources.push({ uri, suites: [suite], components, file });
  }
  return sources;
}

/** Parses deb822 stanzas (blank-line separated "Field: value" blocks); Enabled: no is skipped. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let lastField: string | undefined;
    for (const rawLine of stanza.split("\n")) {
      if (rawLine.startsWith("#")) continue;
      if (/^\s/.test(rawLine) && lastField !== undefined) {
        fields.set(lastField, `${fields.get(lastField)} ${rawLine.trim()}`);
        continue;
      }
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(rawLine);
      if (!match) continue;
      lastField = match[1]!.toLowerCase();
      fields.set(lastField, match[2]!.trim());
    }
    const words = (name: string): string[] => (fields.get(name) ?? "").split(/\s+/).filter((word) => word !== "");
    if (!words("types").includes("deb")) continue;
    if ((fields.get("enabled") ?? "yes").toLowerCase() === "no") continue;
    for (const uri of words("uris")) sources.push({ uri, suites: words("suites"), components: words("components"), file });
  }
  return sources;
}

/** Every `deb` entry of the machine's apt configuration under `aptDirectory` (default /etc/apt). */
export function readAptSources(aptDirectory = "/etc/apt"): AptSource[] {
  const sources: AptSource[] = [];
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  };
  const mainList = read(join(aptDirectory, "sources.list"));
  if (mainList !== undefined) sources.push(...parseOneLineSources(mainList, join(aptDirectory, "sources.list")));
  let names: string[] = [];
  try {
    names = readdirSync(join(aptDirectory, "sources.list.d")).sort();
  } catch {
    names = [];
  }
  for (const name of names) {
    const file = join(aptDirectory, "sources.list.d", name);
    const text = read(file);
    if (text === undefined) continue;
    if (name.endsWith(".list")) sources.push(...parseOneLineSources(text, file));
    else if (name.endsWith(".sources")) sources.push(...parseDeb822Sources(text, file));
  }
  return sources;
}

/** The release codename of this machine (VERSION_CODENAME in /etc/os-release), e.g. "bookworm". */
export function readReleaseCodename(osReleaseFile = "/etc/os-release"): string {
  let text: string;
  try {
    text = readFileSync(osReleaseFile, "utf8");
  } catch {
    throw new Error(`Cannot build the chaos image: ${osReleaseFile} is missing; the image is built from Debian packages and needs a Debian machine`);
  }
  const match = /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(text);
  if (!match) throw new Error(`Cannot build the chaos image: ${osReleaseFile} names no VERSION_CODENAME; the image is built from Debian packages and needs a Debian release`);
  return match[1]!;
}

/**
 * The mirror that serves `codename` itself (not its -updates or -security suites) with the main
 * component: the URI debootstrap needs.
 */
export function findDebianMirror(sources: readonly AptSource[], codename: string): string {
  const found = sources.find((source) => source.suites.includes(codename) && source.components.includes("main"));
  if (found === undefined) {
    const seen = sources.map((source) => `${source.uri} ${source.suites.join(",")} (${source.file})`).join("; ") || "none";
    throw new Error(`Cannot build the chaos image: no apt source serves "${codename} main" (sources seen: ${seen}); add the Debian mirror for ${codename} to /etc/apt/sources.list.d/ and retry`);
  }
  return found.uri.replace(/\/+$/, "");
}
