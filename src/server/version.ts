/** The package version, read once from package.json (pgraft_get_version(), /metrics, the CLI). */
import { readFileSync } from "node:fs";

export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
