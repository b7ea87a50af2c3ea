/**
 * The public surface of the pgraft settings layer: parse postgresql.conf-syntax text and command-line
 * overrides, validate them into a PgraftConfig, render it back, and describe every setting.
 * See README.md in this folder for the rules operators meet.
 */
export {
  ConfigError,
  formatConfigErrorMessage,
  type ConfigIssue,
  type ConfigIssueCode,
  type ConfigProblem,
  type ConfigWarning,
  type ConfigWarningCode,
} from "./config-error.ts";
export {
  findSetting,
  INTEGER_SETTING_MAX,
  SETTING_PREFIX,
  SETTINGS,
  suggestSettingName,
  TUNING_PROFILE_NAMES,
  TUNING_PROFILES,
  type SettingDefinition,
  type SettingType,
  type SettingVariableType,
  type TuningProfile,
  type TuningProfileName,
} from "./setting-definitions.ts";
export {
  DURATION_UNITS_MS,
  editDistance,
  formatHostAndPort,
  parseBoolean,
  parseDurationMs,
  parseHostAndPort,
  type HostAndPort,
  type ValueResult,
} from "./setting-values.ts";
export { memoryFileSystem, nodeFileSystem, type SettingsFileSystem } from "./settings-file-system.ts";
export {
  COMMAND_LINE_SOURCE,
  INCLUDE_DEPTH_MAX,
  parseCommandLineSettings,
  parseSettingsText,
  quoteSettingValue,
  readSettingsFile,
  type ParseSettingsOptions,
  type SettingAssignment,
  type SettingsFileMode,
  type SettingsParseResult,
} from "./settings-syntax.ts";
export {
  AUTH_SECRET_LENGTH_MIN,
  DEFAULT_SOURCE,
  loadPgraftConfig,
  mergeSettings,
  validateSettings,
  type ClusterMember,
  type LoadedPgraftConfig,
  type LoadPgraftConfigOptions,
  type PeerAuthentication,
  type PgraftConfig,
  type SettingSources,
  type SettingsEnvironment,
  type SettingsFileReference,
  type SettingsValidation,
  type TlsFiles,
  type ValidateSettingsOptions,
} from "./settings.ts";
export { formatSettingValue, renderSettings, type RenderSettingsOptions } from "./settings-render.ts";
