/**
 * The few file operations the settings layer needs: reading a settings file and the files it includes,
 * listing an `include_dir` directory, and checking that a secret or TLS file exists.
 *
 * The parser and the validator take this interface as an explicit argument instead of calling node:fs,
 * so tests (and the simulator) hand them an in-memory tree and nothing reads the disk behind their back.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";

export interface SettingsFileSystem {
  /** The file's text, or undefined when it does not exist. Any other failure (permissions) throws. */
  readText(path: string): string | undefined;
  /** The names of a directory's entries, or undefined when the directory does not exist. */
  listDirectory(path: string): string[] | undefined;
  /** Whether `path` names an existing regular file. */
  isFile(path: string): boolean;
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** The real file system, through node:fs. */
export const nodeFileSystem: SettingsFileSystem = {
  readText(path: string): string | undefined {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  listDirectory(path: string): string[] | undefined {
    try {
      return readdirSync(path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  isFile(path: string): boolean {
    try {
      return statSync(path).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  },
};

/**
 * An in-memory file tree: keys are file paths, values their text. Directories exist implicitly as the
 * parents of the files. Used by tests and by anything that holds settings text rather than files.
 */
export function memoryFileSystem(files: Readonly<Record<string, string>>): SettingsFileSystem {
  const texts = new Map(Object.entries(files));
  return {
    readText(path: string): string | undefined {
      return texts.get(path);
    },
    listDirectory(path: string): string[] | undefined {
      const prefix = path.endsWith("/") ? path : `${path}/`;
      const names = new Set<string>();
      for (const filePath of texts.keys()) {
        if (!filePath.startsWith(prefix)) continue;
        names.add(filePath.slice(prefix.length).split("/")[0]!);
      }
      return names.size === 0 ? undefined : [...names];
    },
    isFile(path: string): boolean {
      return texts.has(path);
    },
  };
}
