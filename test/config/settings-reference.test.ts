/**
 * The settings reference in src/config/README.md is generated from the definitions and kept equal to
 * them: every definition appears with its type, default, range or values and description, and a
 * definition added or changed without regenerating the README fails here with the command to run.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import { SETTINGS, type SettingDefinition } from "../../src/config/setting-definitions.ts";
import {
  allowedText,
  REFERENCE_BEGIN,
  REFERENCE_END,
  REGENERATE_COMMAND,
  renderSettingsReference,
  replaceSettingsReference,
  settingSummary,
} from "../../src/config/settings-reference.ts";

const README_URL = new URL("../../src/config/README.md", import.meta.url);

test("src/config/README.md holds the reference generated from setting-definitions.ts", (t) => {
  const readme = readFileSync(README_URL, "utf8");
  t.true(readme.includes(REFERENCE_BEGIN) && readme.includes(REFERENCE_END), "the README keeps the reference between its markers");
  t.true(readme === replaceSettingsReference(readme), `src/config/README.md is out of date with setting-definitions.ts: run ${REGENERATE_COMMAND}`);
});

test("the reference has one row per definition, with its type, default, range or values and description", (t) => {
  const rows = renderSettingsReference().split("\n").filter((line) => line.startsWith("| `"));
  t.is(rows.length, SETTINGS.length);
  for (const [index, definition] of SETTINGS.entries()) {
    const cells = rows[index]!.slice(2, -2).split(" | ");
    t.is(cells[0], `\`${definition.name}\``);
    t.true(cells[1]!.startsWith(definition.type), definition.name);
    t.is(cells[2], definition.defaultDescription.replace(/\|/g, "\\|"), definition.name);
    t.is(cells[4], definition.description.replace(/\|/g, "\\|"), definition.name);
  }
});

test("ranges, values and units come from the definitions", (t) => {
  const byName = (name: string): SettingDefinition => SETTINGS.find((setting) => setting.name === name)!;
  const timeout = byName("pgraft.election_timeout");
  t.is(allowedText(timeout), `${timeout.minimum}-${timeout.maximum} ms`);
  t.is(settingSummary(timeout).unit, "ms");
  t.is(allowedText(byName("pgraft.initial_cluster_state")), byName("pgraft.initial_cluster_state").allowedValues!.join(", "));
  t.is(allowedText(byName("pgraft.metrics_enabled")), "on, off");
  t.is(settingSummary(byName("pgraft.cluster_id")).default, null);
  t.true(settingSummary(byName("pgraft.cluster_id")).required);
});

test("a definition the README does not have makes the check fail", (t) => {
  const readme = readFileSync(README_URL, "utf8");
  const extra: SettingDefinition = { ...SETTINGS[0]!, name: "pgraft.not_documented_yet", description: "A setting added without regenerating" };
  const regenerated = replaceSettingsReference(readme, [...SETTINGS, extra]);
  t.not(regenerated, readme);
  t.true(regenerated.includes("`pgraft.not_documented_yet`"));
  t.throws(() => replaceSettingsReference("# no markers here\n"), { message: /lacks the markers/ });
});
