/**
 * `npm run chaos -- --setup`: prepares what the testcontainers provider needs, the Docker engine and
 * the chaos image, saying what it does while that takes its minutes (a first image build debootstraps
 * a Debian root; later runs are cache hits in seconds).
 */
import { ensureDockerEngine, type DockerEngine, type Progress } from "./engine.ts";
import { ensureChaosImage, type ChaosImage } from "./image.ts";

export interface ContainerSetup {
  readonly engine: DockerEngine;
  readonly image: ChaosImage;
}

/**
 * Ensures the engine runs and the image for the checkout at `projectRoot` (default: this one) exists;
 * returns both.
 */
export async function setupContainers(progress: Progress = (line) => process.stderr.write(`${line}\n`), projectRoot?: string): Promise<ContainerSetup> {
  const engine = await ensureDockerEngine({ progress });
  const image = await ensureChaosImage({ progress, ...(projectRoot === undefined ? {} : { projectRoot }) });
  const what = { cached: "cache hit", imported: "made from the cached Debian root", built: "Debian root debootstrapped" }[image.how];
  progress(`chaos image ready: ${image.name} (${what}, ${(image.elapsedMs / 1000).toFixed(1)} s)`);
  return { engine, image };
}

// Run directly (`npx tsx chaos/containers/setup.ts`): the same as `npm run chaos -- --setup`.
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await setupContainers();
  } catch (error) {
    process.stderr.write(`chaos setup: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
