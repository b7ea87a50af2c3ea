// The trace picture: roles and terms are read right out of trace lines (including a candidate that
// follows the winner without a log line), and a real scenario run renders as well-formed SVG with one
// lane per node, the leader and the crashed nodes where the trace puts them, the fault marks, and the
// commits; `--render` writes it from the command line.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseTraceTimeline, renderTrace } from "../../sim/render.ts";
import { loadScenarioFile } from "../../sim/scenario/parse-scenario.ts";
import { runScenario } from "../../sim/scenario/run-scenario.ts";

const run = promisify(execFile);

/** Checks that `text` is well-formed XML: one root, balanced tags, quoted attributes, escaped text. */
function wellFormed(text: string): string | undefined {
  const stack: string[] = [];
  let roots = 0;
  const token = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|([^<]+)|(<)/g;
  for (let match = token.exec(text); match !== null; match = token.exec(text)) {
    const [, closing, name, , selfClosing, chars, stray] = match;
    if (stray !== undefined) return `stray "<" at ${match.index}`;
    if (chars !== undefined) {
      if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(chars)) return `unescaped "&" at ${match.index}`;
      if (stack.length === 0 && chars.trim() !== "") return `text outside the root at ${match.index}`;
      continue;
    }
    if (name === undefined) continue;
    if (closing) {
      if (stack.pop() !== name) return `</${name}> does not close the open element at ${match.index}`;
      continue;
    }
    if (stack.length === 0) roots++;
    if (!selfClosing) stack.push(name);
  }
  if (stack.length > 0) return `unclosed <${stack.at(-1)}>`;
  if (roots !== 1) return `${roots} root elements`;
  return undefined;
}

test("parseTraceTimeline() follows roles and terms through elections, crashes and pauses", (t) => {
  const timeline = parseTraceTimeline([
    "0.000 seed 9 scenario x",
    "0.000 n1 started (incarnation 1): term 0, log 0 entries",
    "0.000 n2 started (incarnation 1): term 0, log 0 entries",
    "1000.000 n1 became pre-candidate at term 0",
    "1001.000 n1 became candidate at term 1",
    "1002.000 n2 became candidate at term 1",
    "1003.000 n1 became leader at term 1",
    "1004.000 deliver 1->2 MsgApp t1 prev 0/0 n1 c0",
    "1005.000 c0 invoke #0 put(k1,v1) at n1",
    "1010.000 c0 ok #0 at 2",
    "2000.000 partition [1] | [2]",
    "3000.000 n1 stepped down at term 1: no quorum answered within 100 ticks",
    "3500.000 n2 paused",
    "3600.000 n2 resumed with 0 waiting events",
    "4000.000 n1 crash",
    "5000.000 heal",
  ]);
  t.is(timeline.title, "seed 9 scenario x");
  t.is(timeline.endMs, 5_000);
  const n1 = timeline.lanes.get(1)!.map((s) => [s.state, s.term, s.startMs, s.endMs]);
  t.deepEqual(n1, [
    ["follower", 0, 0, 1000],
    ["pre-candidate", 0, 1000, 1001],
    ["candidate", 1, 1001, 1003],
    ["leader", 1, 1003, 3000],
    ["follower", 1, 3000, 4000],
    ["down", 1, 4000, 5000],
  ]);
  const n2 = timeline.lanes.get(2)!.map((s) => [s.state, s.startMs]);
  t.deepEqual(n2, [
    ["follower", 0],
    ["candidate", 1002],
    ["follower", 1004],
    ["paused", 3500],
    ["follower", 3600],
  ]);
  t.deepEqual(timeline.commits, [{ timeMs: 1010, index: 2 }]);
  t.deepEqual(timeline.marks.map((m) => [m.timeMs, m.label, m.kind]), [
    [2000, "partition [1] | [2]", "fault"],
    [5000, "heal", "heal"],
  ]);
});

test("renderTrace() draws a lost-quorum run as well-formed SVG: a lane per node, roles, faults and commits", (t) => {
  const result = runScenario(loadScenarioFile("scenarios/lost-quorum.yaml"), { seed: 1, keepTrace: true });
  const svg = renderTrace(result.traceLines!);
  t.is(wellFormed(svg), undefined);
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  for (const node of ["n1", "n2", "n3"]) t.true(svg.includes(`<g class="lane" data-node="${node}">`), `lane ${node}`);
  t.false(svg.includes('data-node="n4"'));
  // Two nodes crash at 10 s; one leads before, one after the restart at a higher term.
  t.is((svg.match(/data-state="down"/g) ?? []).length, 2);
  t.true((svg.match(/data-state="leader" data-term="1"/g) ?? []).length >= 1);
  t.true((svg.match(/data-state="leader" data-term="2"/g) ?? []).length >= 1);
  t.regex(svg, /<title>10s scenario step scenarios\/lost-quorum\.yaml:16: crash followers<\/title>/);
  t.regex(svg, /restart \$failed/);
  t.regex(svg, /<text[^>]*>\d+ acknowledged writes<\/text>/);
  t.regex(svg, /<g class="commits">[\s\S]*<line /);
});

test("npm run sim -- --render writes the seed's timeline as an SVG file", async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), "pgraft-render-")), "seed.svg");
  await run("npx", ["tsx", "sim/cli.ts", "--seed", "5", "--faults", "swarm", "--duration", "10s", "--render", out]);
  const svg = readFileSync(out, "utf8");
  t.is(wellFormed(svg), undefined);
  t.regex(svg, /<g class="lane" data-node="n1">/);
  t.regex(svg, /seed 5 nodes=/);
});

test("the well-formedness check used above catches broken XML", (t) => {
  t.regex(wellFormed("<svg><g></svg>") ?? "", /does not close/);
  t.regex(wellFormed("<svg>a & b</svg>") ?? "", /unescaped/);
  t.regex(wellFormed("<svg></svg><svg></svg>") ?? "", /2 root elements/);
  t.is(wellFormed('<svg a="1"><g/><text>x &amp; y</text></svg>\n'), undefined);
});
