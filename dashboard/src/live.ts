/**
 * Follows `GET /v1/events/live`. EventSource cannot send an Authorization
 * header, so the stream is read with fetch() and parsed with
 * eventsource-parser. When the connection drops it reconnects with
 * `Last-Event-ID` (the server resumes after that event, so nothing is lost
 * or repeated), waiting longer after each failure so that a down server is
 * not hammered. It stops when `signal` aborts (the page is left).
 */
import { createParser } from "eventsource-parser";
import { ApiError, messageOf, send, type EventRow } from "./api";

/** First and longest wait before reconnecting. */
const RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

export interface LiveHandlers {
  event: (row: EventRow) => void;
  /** Connected (`""`) or why not, shown next to the feed. */
  status: (problem: string) => void;
}

export async function followLive(handlers: LiveHandlers, signal: AbortSignal): Promise<void> {
  let lastId = "";
  let wait = RETRY_MS;
  const parser = createParser({
    onEvent(message) {
      if (message.event === "event") {
        if (message.id) lastId = message.id;
        wait = RETRY_MS;
        handlers.event(JSON.parse(message.data) as EventRow);
      } else if (message.event === "error") {
        // The server's poll failed; it keeps the stream open and retries.
        handlers.status(message.data);
      }
    },
  });
  while (!signal.aborted) {
    try {
      const response = await send("GET", "/v1/events/live", {
        headers: lastId ? { "last-event-id": lastId } : {},
        accept: "text/event-stream",
        signal,
      });
      handlers.status("");
      parser.reset();
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      handlers.status("The live stream closed; reconnecting…");
    } catch (e) {
      if (signal.aborted) return;
      // A refused key signs the user out (api.ts); following on is pointless.
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return;
      handlers.status(`Live stream interrupted: ${messageOf(e)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, MAX_RETRY_MS);
  }
}
