/**
 * Small SVG charts without dependencies: one line chart that also draws step lines (CDFs), markers,
 * dashed series and reference lines, on linear or logarithmic axes, with ticks, axis labels, a title
 * and a legend. The output is a standalone SVG 1.1 document that GitHub renders in Markdown.
 */
import { assert } from "../../src/assert.ts";

export interface ChartPoint {
  readonly x: number;
  readonly y: number;
}

export interface ChartSeries {
  readonly name: string;
  readonly points: readonly ChartPoint[];
  /** Draw as a step function (a CDF): horizontal then vertical. */
  readonly step?: boolean;
  readonly dashed?: boolean;
  readonly markers?: boolean;
  readonly color?: string;
}

export interface ReferenceLine {
  readonly axis: "x" | "y";
  readonly value: number;
  readonly label: string;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  readonly xScale?: "linear" | "log";
  readonly yScale?: "linear" | "log";
  readonly xMin?: number;
  readonly xMax?: number;
  readonly yMin?: number;
  readonly yMax?: number;
  readonly referenceLines?: readonly ReferenceLine[];
  /** Small print under the chart (model, trial counts). */
  readonly notes?: readonly string[];
  readonly width?: number;
  readonly height?: number;
  /** Formats tick values on the y axis (for example as percentages). */
  readonly yTickFormat?: (value: number) => string;
}

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

const MARGIN = { left: 72, top: 40, bottom: 58 };
const LEGEND_CHAR_PX = 7;

/** Room on the right for the legend: its longest name, at least 190 px. */
function rightMargin(series: readonly ChartSeries[]): number {
  return Math.max(190, 50 + LEGEND_CHAR_PX * Math.max(0, ...series.map((item) => item.name.length)));
}
const NOTE_LINE_PX = 15;

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

interface Axis {
  readonly scale: "linear" | "log";
  readonly min: number;
  readonly max: number;
  readonly pixelFrom: number;
  readonly pixelTo: number;
}

function project(axis: Axis, value: number): number {
  const t =
    axis.scale === "log"
      ? (Math.log10(value) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min))
      : (value - axis.min) / (axis.max - axis.min);
  return axis.pixelFrom + Math.min(1.02, Math.max(-0.02, t)) * (axis.pixelTo - axis.pixelFrom);
}

/** Round-number ticks: steps of 1, 2 or 5 times a power of ten (linear); decades, plus 2 and 5 when few (log). */
export function ticks(scale: "linear" | "log", min: number, max: number): number[] {
  assert(max > min, `ticks(): empty range [${min}, ${max}]`);
  if (scale === "log") {
    assert(min > 0, "ticks(): a log axis needs positive bounds");
    const result: number[] = [];
    const decades = Math.log10(max) - Math.log10(min);
    const multipliers = decades <= 2 ? [1, 2, 5] : [1];
    for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) {
      for (const m of multipliers) {
        const value = m * 10 ** exponent;
        if (value >= min * 0.999 && value <= max * 1.001) result.push(Number(value.toPrecision(6)));
      }
    }
    return result;
  }
  const rough = (max - min) / 6;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const result: number[] = [];
  for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step) result.push(Number(value.toPrecision(10)));
  return result;
}

export function formatTick(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 10_000) return `${Number((value / 1000).toPrecision(3))}k`;
  if (magnitude >= 1 || magnitude === 0) return String(Number(value.toPrecision(4)));
  return String(Number(value.toPrecision(2)));
}

function bounds(options: ChartOptions, axis: "x" | "y"): { min: number; max: number } {
  const scale = (axis === "x" ? options.xScale : options.yScale) ?? "linear";
  const values = options.series.flatMap((series) => series.points.map((point) => point[axis]));
  for (const line of options.referenceLines ?? []) if (line.axis === axis) values.push(line.value);
  const usable = values.filter((value) => Number.isFinite(value) && (scale === "linear" || value > 0));
  let min = (axis === "x" ? options.xMin : options.yMin) ?? (usable.length > 0 ? Math.min(...usable) : scale === "log" ? 1 : 0);
  let max = (axis === "x" ? options.xMax : options.yMax) ?? (usable.length > 0 ? Math.max(...usable) : min + 1);
  if (scale === "linear" && (axis === "x" ? options.xMin : options.yMin) === undefined) min = Math.min(0, min);
  if (max <= min) max = scale === "log" ? min * 10 : min + 1;
  if (scale === "log") {
    min = 10 ** Math.floor(Math.log10(min));
    max = 10 ** Math.ceil(Math.log10(max));
  }
  return { min, max };
}

export function renderChart(options: ChartOptions): string {
  const width = options.width ?? 760;
  const notes = options.notes ?? [];
  const height = (options.height ?? 420) + notes.length * NOTE_LINE_PX;
  const plotBottom = height - MARGIN.bottom - notes.length * NOTE_LINE_PX;
  const xBounds = bounds(options, "x");
  const yBounds = bounds(options, "y");
  const right = rightMargin(options.series);
  const x: Axis = { scale: options.xScale ?? "linear", ...xBounds, pixelFrom: MARGIN.left, pixelTo: width - right };
  const y: Axis = { scale: options.yScale ?? "linear", ...yBounds, pixelFrom: plotBottom, pixelTo: MARGIN.top };
  const yFormat = options.yTickFormat ?? formatTick;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`);
  // Grid and ticks.
  for (const value of ticks(x.scale, x.min, x.max)) {
    const px = fixed(project(x, value));
    parts.push(`<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${px}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(formatTick(value))}</text>`);
  }
  for (const value of ticks(y.scale, y.min, y.max)) {
    const py = fixed(project(y, value));
    parts.push(`<line x1="${MARGIN.left}" y1="${py}" x2="${x.pixelTo}" y2="${py}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${fixed(project(y, value) + 4)}" text-anchor="end">${escapeXml(yFormat(value))}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${fixed(x.pixelTo - MARGIN.left)}" height="${fixed(plotBottom - MARGIN.top)}" fill="none" stroke="#333333"/>`);
  parts.push(`<text x="${fixed((MARGIN.left + x.pixelTo) / 2)}" y="${plotBottom + 38}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  const yLabelY = fixed((MARGIN.top + plotBottom) / 2);
  parts.push(`<text x="18" y="${yLabelY}" text-anchor="middle" transform="rotate(-90 18 ${yLabelY})">${escapeXml(options.yLabel)}</text>`);
  for (const line of options.referenceLines ?? []) parts.push(referenceLine(line, x, y, plotBottom));
  options.series.forEach((series, i) => parts.push(...seriesElements(series, series.color ?? PALETTE[i % PALETTE.length]!, x, y)));
  parts.push(...legend(options.series, width - right + 14));
  notes.forEach((note, i) => {
    parts.push(`<text x="${MARGIN.left}" y="${plotBottom + 56 + i * NOTE_LINE_PX}" font-size="11" fill="#555555">${escapeXml(note)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function fixed(value: number): string {
  assert(Number.isFinite(value), `SVG coordinate ${value} is not finite`);
  return value.toFixed(1);
}

function referenceLine(line: ReferenceLine, x: Axis, y: Axis, plotBottom: number): string {
  if (line.axis === "x") {
    const px = fixed(project(x, line.value));
    return (
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${plotBottom}" stroke="#555555" stroke-dasharray="2,3"/>` +
      `<text x="${px}" y="${MARGIN.top - 4}" text-anchor="middle" font-size="10" fill="#555555">${escapeXml(line.label)}</text>`
    );
  }
  const py = fixed(project(y, line.value));
  return (
    `<line x1="${MARGIN.left}" y1="${py}" x2="${fixed(x.pixelTo)}" y2="${py}" stroke="#555555" stroke-dasharray="2,3"/>` +
    `<text x="${fixed(x.pixelTo - 4)}" y="${fixed(project(y, line.value) - 4)}" text-anchor="end" font-size="10" fill="#555555">${escapeXml(line.label)}</text>`
  );
}

function seriesElements(series: ChartSeries, color: string, x: Axis, y: Axis): string[] {
  const usable = series.points.filter(
    (point) => Number.isFinite(point.x) && Number.isFinite(point.y) && (x.scale === "linear" || point.x > 0) && (y.scale === "linear" || point.y > 0),
  );
  if (usable.length === 0) return [];
  const coordinates: string[] = [];
  let previousY: string | undefined;
  for (const point of usable) {
    const px = fixed(project(x, point.x));
    const py = fixed(project(y, point.y));
    if (series.step && previousY !== undefined) coordinates.push(`${px},${previousY}`);
    coordinates.push(`${px},${py}`);
    previousY = py;
  }
  const dash = series.dashed ? ` stroke-dasharray="6,4"` : "";
  const elements = [`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${coordinates.join(" ")}"/>`];
  if (series.markers) {
    for (const point of usable) {
      elements.push(`<circle cx="${fixed(project(x, point.x))}" cy="${fixed(project(y, point.y))}" r="3.5" fill="${color}"/>`);
    }
  }
  return elements;
}

function legend(series: readonly ChartSeries[], left: number): string[] {
  return series.flatMap((item, i) => {
    const color = item.color ?? PALETTE[i % PALETTE.length]!;
    const top = MARGIN.top + 8 + i * 18;
    const dash = item.dashed ? ` stroke-dasharray="6,4"` : "";
    return [
      `<line x1="${left}" y1="${top}" x2="${left + 22}" y2="${top}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${left + 28}" y="${top + 4}">${escapeXml(item.name)}</text>`,
    ];
  });
}
