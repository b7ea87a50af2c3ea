/**
 * Reads a streamed HTTP body of JSON lines (etcd's gateway watch stream) and calls `onLine` with each
 * parsed line as it arrives; blank lines are skipped. Ends when the body ends or `onLine` returns
 * true (the caller has seen enough; it aborts the request itself).
 */
export async function readJsonLines(body: ReadableStream<Uint8Array>, onLine: (line: any, text: string) => boolean | void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (text !== "" && onLine(JSON.parse(text), text) === true) return;
    }
  }
}
