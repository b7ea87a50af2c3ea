// The hand-written SVG charts: well-formed XML (every tag closed, attributes quoted, text escaped),
// finite coordinates, one polyline per series, round tick values, and a log axis in decades.
import test from "ava";
import { escapeXml, renderChart, ticks } from "../../sim/tune/svg.ts";

/** A small XML well-formedness check: balanced tags, quoted attributes, no stray "<" or "&". */
function checkWellFormed(svg: string): string | undefined {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let match = tag.exec(svg); match; match = tag.exec(svg)) {
    const between = svg.slice(last, match.index);
    if (/[<>]/.test(between)) return `stray angle bracket before offset ${match.index}: ${between.slice(0, 40)}`;
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(between)) return `unescaped & in text: ${between.slice(0, 40)}`;
    last = match.index + match[0].length;
    const [, closing, name, , selfClosing] = match;
    if (selfClosing) continue;
    if (closing) {
      if (stack.pop() !== name) return `unbalanced </${name}>`;
    } else stack.push(name!);
  }
  if (svg.slice(last).trim() !== "") return "text after the last tag";
  return stack.length === 0 ? undefined : `unclosed <${stack.join(">, <")}>`;
}

test("the checker itself finds broken XML", (t) => {
  t.is(checkWellFormed("<svg><g></svg>"), "unbalanced </svg>");
  t.regex(checkWellFormed("<svg><text>a < b</text></svg>") ?? "", /stray/);
  t.regex(checkWellFormed("<svg><text>a & b</text></svg>") ?? "", /unescaped/);
  t.is(checkWellFormed('<svg a="1"><text>ok &amp; fine</text><line x="2"/></svg>'), undefined);
});

test("renderChart() produces a well-formed SVG document with escaped text", (t) => {
  const svg = renderChart({
    title: 'Failover <low> & "high"',
    xLabel: "seconds",
    yLabel: "cumulative percent",
    series: [
      { name: "1 ms", points: [{ x: 0.5, y: 10 }, { x: 1, y: 50 }, { x: 2, y: 100 }], step: true },
      { name: "a < b", points: [{ x: 1, y: 20 }, { x: 3, y: 80 }], dashed: true, markers: true },
    ],
    referenceLines: [{ axis: "x", value: 3, label: "3T" }],
    notes: ["note & more"],
    yMin: 0,
    yMax: 100,
  });
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith("</svg>"));
  t.is(checkWellFormed(svg), undefined);
  t.false(/NaN|Infinity|undefined/.test(svg));
  t.true(svg.includes("Failover &lt;low&gt; &amp; &quot;high&quot;"));
  t.is(svg.match(/<polyline /g)?.length, 2);
  t.is(svg.match(/<circle /g)?.length, 2, "markers on the second series only");
  // A step series draws the horizontal segment first: three points become five.
  const firstPoints = /<polyline[^>]*points="([^"]*)"/.exec(svg)![1]!.split(" ");
  t.is(firstPoints.length, 5);
});

test("renderChart() survives empty series and non-positive values on a log axis", (t) => {
  const svg = renderChart({
    title: "log",
    xLabel: "ms",
    yLabel: "count",
    xScale: "log",
    series: [
      { name: "empty", points: [] },
      { name: "with zero", points: [{ x: 0, y: 1 }, { x: 10, y: 2 }, { x: 1000, y: 3 }] },
    ],
  });
  t.is(checkWellFormed(svg), undefined);
  t.false(/NaN|Infinity/.test(svg));
});

test("ticks() gives round linear steps and decades on a log axis", (t) => {
  t.deepEqual(ticks("linear", 0, 100), [0, 20, 40, 60, 80, 100]);
  t.deepEqual(ticks("linear", 0, 3.5), [0, 1, 2, 3]);
  t.deepEqual(ticks("linear", 0, 0.35), [0, 0.1, 0.2, 0.3]);
  t.deepEqual(ticks("log", 100, 100_000), [100, 1000, 10_000, 100_000]);
  t.deepEqual(ticks("log", 10, 1000), [10, 20, 50, 100, 200, 500, 1000]);
});

test("escapeXml() escapes the five XML specials", (t) => {
  t.is(escapeXml(`<a href="x">Tom & Jerry's</a>`), "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;");
});
