/**
 * A progress bar on stderr: one line redrawn in place on a terminal, a line every 10% otherwise (CI
 * logs), never anything on stdout, which --json keeps for results.
 */
export interface ProgressBarOptions {
  readonly label: string;
  readonly unit: string;
  readonly stream?: NodeJS.WriteStream;
  readonly nowMs?: () => number;
}

const BAR_WIDTH = 30;

export class ProgressBar {
  readonly #label: string;
  readonly #unit: string;
  readonly #stream: NodeJS.WriteStream;
  readonly #nowMs: () => number;
  readonly #startMs: number;
  #lastDecile = -1;
  #lastDrawMs = 0;
  #finished = false;

  constructor(options: ProgressBarOptions) {
    this.#label = options.label;
    this.#unit = options.unit;
    this.#stream = options.stream ?? process.stderr;
    this.#nowMs = options.nowMs ?? (() => Date.now());
    this.#startMs = this.#nowMs();
  }

  update(done: number, total: number): void {
    if (this.#finished) return;
    const line = formatProgress({ label: this.#label, unit: this.#unit, done, total, elapsedMs: this.#nowMs() - this.#startMs });
    if (this.#stream.isTTY) {
      const nowMs = this.#nowMs();
      if (done < total && nowMs - this.#lastDrawMs < 100) return;
      this.#lastDrawMs = nowMs;
      this.#stream.write(`\r${line}\x1b[K`);
      if (done >= total) this.#finish();
      return;
    }
    const decile = total === 0 ? 10 : Math.floor((10 * done) / total);
    if (decile === this.#lastDecile) return;
    this.#lastDecile = decile;
    this.#stream.write(`${line}\n`);
    if (done >= total) this.#finished = true;
  }

  #finish(): void {
    this.#finished = true;
    this.#stream.write("\n");
  }
}

export function formatProgress(options: { label: string; unit: string; done: number; total: number; elapsedMs: number }): string {
  const { label, unit, done, total, elapsedMs } = options;
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled);
  const remainingMs = fraction > 0 && fraction < 1 ? (elapsedMs / fraction) * (1 - fraction) : 0;
  const eta = fraction > 0 && fraction < 1 ? `, about ${formatDuration(remainingMs)} left` : "";
  return `${label} [${bar}] ${Math.floor(fraction * 100)}% ${done}/${total} ${unit}, ${formatDuration(elapsedMs)}${eta}`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}
