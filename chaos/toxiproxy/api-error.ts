/**
 * The errors the HTTP API answers with. The real Toxiproxy (api.go) sends `{"error": msg, "status": code}`
 * and builds its messages as "<kind>: <detail>" (its joinError), so clients that match on the kind
 * ("missing required field", "proxy not found", ...) work here too; the detail after the colon is ours and
 * says what was wrong and what is allowed.
 */

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    message: string,
    /** The HTTP status the API answers with. */
    readonly status: number,
  ) {
    super(message);
  }

  /** The body the real server writes: `{"error": ..., "status": ...}` (the caller adds the newline). */
  toJSON(): { error: string; status: number } {
    return { error: this.message, status: this.status };
  }
}

export function badRequestBody(detail: string): ApiError {
  return new ApiError(`bad request body: ${detail}`, 400);
}

export function missingField(field: string): ApiError {
  return new ApiError(`missing required field: ${field}`, 400);
}

export function proxyNotFound(name: string): ApiError {
  return new ApiError(`proxy not found: no proxy is named ${JSON.stringify(name)}`, 404);
}

export function proxyAlreadyExists(name: string): ApiError {
  return new ApiError(`proxy already exists: a proxy named ${JSON.stringify(name)} exists; delete it first or update it`, 409);
}

export function invalidStream(stream: unknown): ApiError {
  return new ApiError(`stream was invalid, can be either upstream or downstream: got ${JSON.stringify(stream)}`, 400);
}

export function invalidToxicType(type: unknown, known: readonly string[]): ApiError {
  return new ApiError(`invalid toxic type: got ${JSON.stringify(type) ?? "none"}, known types are ${known.join(", ")}`, 400);
}

export function toxicAlreadyExists(name: string, proxy: string): ApiError {
  return new ApiError(`toxic already exists: proxy ${JSON.stringify(proxy)} has a toxic named ${JSON.stringify(name)}; give another name or update it`, 409);
}

export function toxicNotFound(name: string, proxy: string): ApiError {
  return new ApiError(`toxic not found: proxy ${JSON.stringify(proxy)} has no toxic named ${JSON.stringify(name)}`, 404);
}

/** A proxy that could not start listening: the real server answers 500 with the system's reason. */
export function proxyStartFailed(name: string, listen: string, reason: string): ApiError {
  return new ApiError(`listen tcp ${listen}: ${reason}: cannot start proxy ${JSON.stringify(name)}; choose another listen address or port 0 for an ephemeral one`, 500);
}

/** A bound of this server (number of proxies, toxics, body size), not of the real one. */
export function limitReached(message: string, status = 400): ApiError {
  return new ApiError(message, status);
}
