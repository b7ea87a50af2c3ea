/**
 * A trace as a picture: an SVG timeline with one lane per node showing its role (colour) and term over
 * time, the faults and heals as marks above the lanes, and acknowledged writes (commits) as ticks
 * below them, so a person sees what happened without reading the event log. Every segment and mark
 * carries a tooltip (<title>) with the exact times and the trace line behind it.
 *
 *   npm run sim -- --seed 7 --faults swarm --render seed-7.svg
 *   npm run sim -- --scenario scenarios/lost-quorum.yaml --seed 3 --render lost-quorum.svg
 *
 * The trace is read line by line ("TIME text", sim/trace.ts). Roles come from the nodes' own log lines
 * ("n2 became leader at term 3", "n1 stepped down at term 3", "n3 crash", "n2 started ..."); a
 * candidate that hears the winner's append at its own term follows it without a log line, so that is
 * read from the message lines when they were traced.
 */

export type LaneState = "follower" | "pre-candidate" | "candidate" | "leader" | "down" | "paused" | "failed" | "joining";

export interface LaneSegment {
  readonly state: LaneState;
  readonly term: number;
  readonly startMs: number;
  endMs: number;
}

export interface TimelineMark {
  readonly timeMs: number;
  readonly label: string;
  readonly text: string;
  readonly kind: "fault" | "heal" | "step" | "membership";
}

export interface TraceTimeline {
  readonly title: string;
  readonly endMs: number;
  /** One lane per node, by id. */
  readonly lanes: ReadonlyMap<number, readonly LaneSegment[]>;
  readonly marks: readonly TimelineMark[];
  /** Times of acknowledged writes, with their log index. */
  readonly commits: readonly { readonly timeMs: number; readonly index: number }[];
}

export interface RenderOptions {
  readonly title?: string;
  readonly widthPx?: number;
}

const COLOURS: Readonly<Record<LaneState, string>> = {
  leader: "#2e7d32",
  follower: "#a5d6a7",
  "pre-candidate": "#ffe082",
  candidate: "#ffa726",
  down: "#424242",
  paused: "#b39ddb",
  failed: "#c62828",
  joining: "#e0e0e0",
};

const LINE_PATTERN = /^\s*(\d+(?:\.\d+)?) (.*)$/;

interface LaneCursor {
  state: LaneState;
  term: number;
  /** The role to return to after a pause. */
  resumeState: LaneState;
  segments: LaneSegment[];
}

/** Reads the roles, terms, faults and commits out of trace lines. */
export function parseTraceTimeline(lines: readonly string[], title = ""): TraceTimeline {
  const lanes = new Map<number, LaneCursor>();
  const marks: TimelineMark[] = [];
  const commits: { timeMs: number; index: number }[] = [];
  const writeIds = new Set<string>();
  let endMs = 0;
  let heading = title;
  const lane = (id: number, timeMs: number): LaneCursor => {
    let cursor = lanes.get(id);
    if (cursor === undefined) {
      cursor = { state: "down", term: 0, resumeState: "follower", segments: [] };
      lanes.set(id, cursor);
      if (timeMs > 0) cursor.segments.push({ state: "down", term: 0, startMs: 0, endMs: timeMs });
    }
    return cursor;
  };
  const become = (id: number, timeMs: number, state: LaneState, term?: number): void => {
    const cursor = lane(id, timeMs);
    const nextTerm = term ?? cursor.term;
    if (cursor.state === state && cursor.term === nextTerm && cursor.segments.length > 0) return;
    const last = cursor.segments.at(-1);
    if (last !== undefined) last.endMs = timeMs;
    cursor.state = state;
    cursor.term = nextTerm;
    cursor.segments.push({ state, term: nextTerm, startMs: timeMs, endMs: timeMs });
  };
  for (const line of lines) {
    const match = LINE_PATTERN.exec(line);
    if (match === null) continue;
    const timeMs = Number(match[1]);
    const text = match[2]!;
    endMs = Math.max(endMs, timeMs);
    if (heading === "" && text.startsWith("seed ")) heading = text.length > 160 ? `${text.slice(0, 160)}...` : text;
    readLine(text, timeMs, { lane, become, marks, commits, writeIds, lanes });
  }
  for (const cursor of lanes.values()) {
    const last = cursor.segments.at(-1);
    if (last !== undefined) last.endMs = endMs;
  }
  const result = new Map<number, readonly LaneSegment[]>();
  for (const id of [...lanes.keys()].sort((a, b) => a - b)) result.set(id, lanes.get(id)!.segments.filter((s) => s.endMs > s.startMs || s === lanes.get(id)!.segments.at(-1)));
  return { title: heading, endMs, lanes: result, marks, commits };
}

interface ReadState {
  lane(id: number, timeMs: number): LaneCursor;
  become(id: number, timeMs: number, state: LaneState, term?: number): void;
  marks: TimelineMark[];
  commits: { timeMs: number; index: number }[];
  writeIds: Set<string>;
  lanes: Map<number, LaneCursor>;
}

/** One trace line: a role change, a fault, a step, a commit, or nothing the picture shows. */
function readLine(text: string, timeMs: number, state: ReadState): void {
  let m: RegExpExecArray | null;
  if ((m = /^n(\d+) started \(incarnation \d+\): term (\d+)/.exec(text))) return state.become(Number(m[1]), timeMs, "follower", Number(m[2]));
  if ((m = /^n(\d+) created \(joining\)/.exec(text))) return state.become(Number(m[1]), timeMs, "joining", 0);
  if ((m = /^n(\d+) became (leader|candidate|pre-candidate) at term (\d+)/.exec(text))) {
    return state.become(Number(m[1]), timeMs, m[2] as LaneState, Number(m[3]));
  }
  if ((m = /^n(\d+) received \S+ from \d+ at higher term (\d+); became follower/.exec(text))) return state.become(Number(m[1]), timeMs, "follower", Number(m[2]));
  if ((m = /^n(\d+) (?:stepped down|lost the \S+) at term (\d+)/.exec(text))) return state.become(Number(m[1]), timeMs, "follower", Number(m[2]));
  if ((m = /^n(\d+) crash(?: during a disk write)?(?: \(torn: .*\))?$/.exec(text))) return state.become(Number(m[1]), timeMs, "down");
  if ((m = /^n(\d+) refused to start/.exec(text))) {
    state.marks.push({ timeMs, label: `n${m[1]} refused to start`, text, kind: "fault" });
    return state.become(Number(m[1]), timeMs, "failed");
  }
  if ((m = /^n(\d+) paused/.exec(text))) {
    const cursor = state.lane(Number(m[1]), timeMs);
    cursor.resumeState = cursor.state;
    return state.become(Number(m[1]), timeMs, "paused");
  }
  if ((m = /^n(\d+) resumed/.exec(text))) return state.become(Number(m[1]), timeMs, state.lane(Number(m[1]), timeMs).resumeState);
  if ((m = /^deliver (\d+)->(\d+) (MsgApp|MsgHeartbeat|MsgSnap) t(\d+)/.exec(text))) {
    // A candidate that hears an append of its own term follows the winner (no log line says so).
    const to = state.lanes.get(Number(m[2]));
    if (to !== undefined && (to.state === "candidate" || to.state === "pre-candidate") && Number(m[4]) >= to.term) {
      state.become(Number(m[2]), timeMs, "follower", Number(m[4]));
    }
    return;
  }
  if ((m = /^c(\d+) invoke #(\d+) (put|delete|cas)\(/.exec(text))) {
    state.writeIds.add(`c${m[1]}#${m[2]}`);
    return;
  }
  if ((m = /^c(\d+) ok #(\d+) at (\d+)/.exec(text))) {
    if (state.writeIds.delete(`c${m[1]}#${m[2]}`)) state.commits.push({ timeMs, index: Number(m[3]) });
    return;
  }
  if ((m = /^probe #(\d+) (put|delete|cas)\(/.exec(text))) {
    state.writeIds.add(`p#${m[1]}`);
    return;
  }
  if ((m = /^probe #(\d+) ok at (\d+)/.exec(text))) {
    if (state.writeIds.delete(`p#${m[1]}`)) state.commits.push({ timeMs, index: Number(m[2]) });
    return;
  }
  const mark = markOf(text, timeMs);
  if (mark !== undefined) state.marks.push(mark);
}

function markOf(text: string, timeMs: number): TimelineMark | undefined {
  let m: RegExpExecArray | null;
  if ((m = /^scenario step \S+: (.*)$/.exec(text))) {
    const kind = /^heal|^resume|^restart|^repair_disk|^release/.test(m[1]!) ? "heal" : /^(add_node|remove_node|transfer_leadership)/.test(m[1]!) ? "membership" : "step";
    return { timeMs, label: m[1]!.replace(/ \{.*\}$/, ""), text, kind };
  }
  if (/^heal$|^all faults healed/.test(text)) return { timeMs, label: text.startsWith("all") ? "heal all" : "heal", text, kind: "heal" };
  if (/^(partition|cut one way|link \d+->\d+|hold|release) /.test(text)) return { timeMs, label: text.replace(/ latency .*$/, ""), text, kind: "fault" };
  if ((m = /^n(\d+) (will crash during its next disk write|disk corrupted|disk slow|disk writes take|disk failing|disk fails|disk repaired|clock rate)/.exec(text))) {
    const fsync = /disk writes take (\d+(?:\.\d+)?) ms/.exec(text);
    const label = fsync !== null ? `fsync ${fsync[1]} ms` : m[2]!.replace("will crash during its next disk write", "crash armed");
    return { timeMs, label: `n${m[1]} ${label}`, text, kind: m[2] === "disk repaired" ? "heal" : "fault" };
  }
  if (/^scenario request |^(remove|add) n\d+: /.test(text) || /^n\d+ (proposed|promoted|transferring)/.test(text)) {
    return { timeMs, label: text.replace(/^scenario request /, "").slice(0, 60), text, kind: "membership" };
  }
  return undefined;
}

// -------------------------------------------------------------------------------------------------
// SVG

const LANE_HEIGHT_PX = 24;
const LANE_GAP_PX = 8;
const LEFT_PX = 64;
const RIGHT_PX = 24;
const MARK_ROW_PX = 70;
const COMMIT_ROW_PX = 26;

/** Renders trace lines as an SVG document (a complete, standalone file). */
export function renderTrace(lines: readonly string[], options: RenderOptions = {}): string {
  return renderTimeline(parseTraceTimeline(lines, options.title ?? ""), options);
}

export function renderTimeline(timeline: TraceTimeline, options: RenderOptions = {}): string {
  const widthPx = options.widthPx ?? 1200;
  const plotPx = widthPx - LEFT_PX - RIGHT_PX;
  const endMs = Math.max(1, timeline.endMs);
  const x = (timeMs: number): number => LEFT_PX + (timeMs / endMs) * plotPx;
  const laneIds = [...timeline.lanes.keys()];
  const marksTopPx = 54;
  const lanesTopPx = marksTopPx + MARK_ROW_PX;
  const lanesBottomPx = lanesTopPx + laneIds.length * (LANE_HEIGHT_PX + LANE_GAP_PX);
  const commitsTopPx = lanesBottomPx + 4;
  const legendTopPx = commitsTopPx + COMMIT_ROW_PX + 22;
  const heightPx = legendTopPx + 30;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}" viewBox="0 0 ${widthPx} ${heightPx}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="0" width="${widthPx}" height="${heightPx}" fill="#ffffff"/>`,
  );
  // The title (the trace's first line: seed and world) wraps onto a second line rather than run off.
  const charactersMax = Math.floor((widthPx - LEFT_PX - 8) / 7.2);
  const title = timeline.title || "pgraft simulator trace";
  const breakAt = title.length > charactersMax ? title.lastIndexOf(" ", charactersMax) : -1;
  const titleLines = breakAt > 0 ? [title.slice(0, breakAt), title.slice(breakAt + 1)] : [title];
  titleLines.forEach((line, i) => {
    out.push(`<text x="${LEFT_PX}" y="${14 + i * 14}" font-size="${i === 0 ? 12 : 11}" font-weight="${i === 0 ? "bold" : "normal"}">${escapeXml(line.slice(0, charactersMax + 20))}</text>`);
  });
  out.push(...axis(endMs, x, marksTopPx - 14, lanesBottomPx));
  out.push(...markRow(timeline.marks, x, marksTopPx, lanesBottomPx));
  laneIds.forEach((id, row) => out.push(...lane(id, timeline.lanes.get(id)!, x, lanesTopPx + row * (LANE_HEIGHT_PX + LANE_GAP_PX))));
  out.push(...commitRow(timeline.commits, x, commitsTopPx, plotPx));
  out.push(...legend(legendTopPx));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function axis(endMs: number, x: (t: number) => number, topPx: number, bottomPx: number): string[] {
  const stepMs = niceStep(endMs / 12);
  const out = [`<g class="axis" stroke="#bdbdbd">`];
  for (let t = 0; t <= endMs; t += stepMs) {
    out.push(`<line x1="${fmt(x(t))}" y1="${topPx + 4}" x2="${fmt(x(t))}" y2="${bottomPx}" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${fmt(x(t))}" y="${topPx}" text-anchor="middle" stroke="none" fill="#616161">${escapeXml(formatTime(t))}</text>`);
  }
  out.push("</g>");
  return out;
}

function markRow(marks: readonly TimelineMark[], x: (t: number) => number, topPx: number, bottomPx: number): string[] {
  const colours = { fault: "#c62828", heal: "#1565c0", step: "#c62828", membership: "#6a1b9a" } as const;
  const out = [`<g class="marks">`, `<text x="4" y="${topPx + 14}" fill="#616161">faults</text>`];
  let labelEndPx = -Infinity;
  let labelRow = 0;
  for (const mark of marks) {
    const px = x(mark.timeMs);
    const colour = colours[mark.kind];
    out.push(`<g class="mark ${mark.kind}"><title>${escapeXml(`${formatTime(mark.timeMs)} ${mark.text}`)}</title>`);
    out.push(`<line x1="${fmt(px)}" y1="${topPx + 4}" x2="${fmt(px)}" y2="${bottomPx}" stroke="${colour}" stroke-opacity="0.35"/>`);
    out.push(`<path d="M${fmt(px - 4)},${topPx + 4} L${fmt(px + 4)},${topPx + 4} L${fmt(px)},${topPx + 11} Z" fill="${colour}"/>`);
    // Labels go on three staggered rows; one that would overlap every row is left to the tooltip.
    const widthPx = mark.label.length * 5.6;
    if (px > labelEndPx + 4 || labelRow < 2) {
      labelRow = px > labelEndPx + 4 ? 0 : labelRow + 1;
      const yPx = topPx + 24 + labelRow * 14;
      out.push(`<text x="${fmt(px + 2)}" y="${yPx}" fill="${colour}">${escapeXml(mark.label)}</text>`);
      labelEndPx = Math.max(labelEndPx, px + widthPx);
    }
    out.push("</g>");
  }
  out.push("</g>");
  return out;
}

function lane(id: number, segments: readonly LaneSegment[], x: (t: number) => number, topPx: number): string[] {
  const out = [`<g class="lane" data-node="n${id}">`, `<text x="8" y="${topPx + LANE_HEIGHT_PX / 2 + 4}" font-weight="bold">n${id}</text>`];
  for (const segment of segments) {
    const x1 = x(segment.startMs);
    const widthPx = Math.max(0.5, x(segment.endMs) - x1);
    const dark = segment.state === "leader" || segment.state === "down" || segment.state === "failed";
    const title = `n${id} ${segment.state}${segment.state === "down" || segment.state === "failed" ? "" : ` term ${segment.term}`} from ${formatTime(segment.startMs)} to ${formatTime(segment.endMs)}`;
    out.push(
      `<rect x="${fmt(x1)}" y="${topPx}" width="${fmt(widthPx)}" height="${LANE_HEIGHT_PX}" fill="${COLOURS[segment.state]}" data-state="${segment.state}" data-term="${segment.term}"><title>${escapeXml(title)}</title></rect>`,
    );
    const label = segment.state === "down" || segment.state === "failed" ? "" : `t${segment.term}`;
    if (label !== "" && widthPx > label.length * 7 + 4) {
      out.push(`<text x="${fmt(x1 + 3)}" y="${topPx + LANE_HEIGHT_PX / 2 + 4}" fill="${dark ? "#ffffff" : "#212121"}" pointer-events="none">${label}</text>`);
    }
  }
  out.push("</g>");
  return out;
}

/** One tick per pixel column that saw commits, taller for more; the tooltip gives the count and indexes. */
function commitRow(commits: readonly { timeMs: number; index: number }[], x: (t: number) => number, topPx: number, plotPx: number): string[] {
  const out = [`<g class="commits">`, `<text x="4" y="${topPx + 15}" fill="#616161">commits</text>`];
  const columns = new Map<number, { count: number; first: number; last: number; timeMs: number }>();
  for (const commit of commits) {
    const column = Math.round(x(commit.timeMs));
    const entry = columns.get(column);
    if (entry === undefined) columns.set(column, { count: 1, first: commit.index, last: commit.index, timeMs: commit.timeMs });
    else {
      entry.count++;
      entry.first = Math.min(entry.first, commit.index);
      entry.last = Math.max(entry.last, commit.index);
    }
  }
  const most = Math.max(1, ...[...columns.values()].map((c) => c.count));
  for (const [column, entry] of columns) {
    const heightPx = 6 + Math.round((entry.count / most) * (COMMIT_ROW_PX - 8));
    out.push(
      `<line x1="${column}" y1="${topPx + COMMIT_ROW_PX - heightPx}" x2="${column}" y2="${topPx + COMMIT_ROW_PX}" stroke="#37474f"><title>${escapeXml(`${formatTime(entry.timeMs)}: ${entry.count} write${entry.count === 1 ? "" : "s"} acknowledged (index ${entry.first}${entry.last !== entry.first ? `..${entry.last}` : ""})`)}</title></line>`,
    );
  }
  out.push(`<text x="${LEFT_PX + plotPx}" y="${topPx - 2}" text-anchor="end" fill="#616161">${commits.length} acknowledged writes</text>`);
  out.push("</g>");
  return out;
}

function legend(topPx: number): string[] {
  const out = [`<g class="legend">`];
  let xPx = LEFT_PX;
  for (const state of Object.keys(COLOURS) as LaneState[]) {
    out.push(`<rect x="${xPx}" y="${topPx}" width="14" height="12" fill="${COLOURS[state]}" stroke="#9e9e9e"/>`);
    out.push(`<text x="${xPx + 18}" y="${topPx + 10}">${state}</text>`);
    xPx += 30 + state.length * 6.5;
  }
  out.push(`<text x="${xPx + 10}" y="${topPx + 10}" fill="#c62828">&#9660; fault</text>`);
  out.push(`<text x="${xPx + 70}" y="${topPx + 10}" fill="#1565c0">&#9660; heal</text>`);
  out.push(`<text x="${xPx + 125}" y="${topPx + 10}" fill="#6a1b9a">&#9660; membership</text>`);
  out.push("</g>");
  return out;
}

function niceStep(roughMs: number): number {
  for (const step of [10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000]) {
    if (step >= roughMs) return step;
  }
  return 3_600_000;
}

function formatTime(ms: number): string {
  if (ms === 0) return "0s";
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${Number(ms.toFixed(3))}ms`;
}

function fmt(value: number): string {
  return value.toFixed(1);
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}
