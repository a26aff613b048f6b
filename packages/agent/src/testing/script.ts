import type { IncomingHttpHeaders } from 'node:http';

/** Which endpoint a request came to. */
export type Wire = 'responses' | 'chat';

/** A function call the scripted model makes. */
export interface ScriptedCall {
  name: string;
  /** An object is sent as its JSON text; a string is sent as is (malformed JSON included). */
  arguments: string | Record<string, unknown>;
  /**
   * @default `call_<turn>_<index>`, unique within the server
   */
  callId?: string;
}

/** Token counts a turn reports; each one left out is estimated (about 4 characters a token). */
export interface ScriptedUsage {
  /** @default the request body's length / 4 */
  inputTokens?: number;
  /** @default the prefix shared with the run's previous request / 4, a crude prompt cache */
  cachedInputTokens?: number;
  /** @default the output's length / 4, reasoning included */
  outputTokens?: number;
  /** @default the reasoning summary's length / 4 */
  reasoningTokens?: number;
}

/**
 * One failed attempt, played before the turn's answer. Each fault answers one request; the turn
 * is answered once its faults are spent, so `faults: [429, 500]` takes three requests.
 */
export type Fault =
  /** An HTTP error status with an OpenAI-style error body. */
  | {
      type: 'status';
      status: number;
      /** Sent as `retry-after` (seconds, or an HTTP date). */
      retryAfter?: number | string;
      /** Sent as `retry-after-ms`. */
      retryAfterMs?: number;
      /** @default an OpenAI-style `{ error: { message, type, code } }` for the status */
      body?: unknown;
    }
  /** Sends the headers and `afterEvents` events (default 3), then destroys the socket. */
  | { type: 'cut'; afterEvents?: number }
  /**
   * Goes silent: without `afterEvents` before the headers (a hung server), else after that many
   * events (a stalled stream). Lasts until the client goes away or the server closes.
   */
  | { type: 'stall'; afterEvents?: number }
  /** Sends `afterEvents` good events (default 1), then one whose data is not JSON, and ends. */
  | { type: 'malformed'; afterEvents?: number }
  /**
   * An error reported inside a 200 stream: `response.failed` on the Responses wire, an
   * `{"error": …}` chunk on Chat Completions.
   * @default code 'server_error'
   */
  | { type: 'stream_error'; code?: string | null; message?: string };

/** What the scripted model answers for one turn, in this order: reasoning, text, calls. */
export interface ScriptedTurn {
  /** Reasoning summary parts. With `include: ['reasoning.encrypted_content']` the item carries encrypted content the server will check when it is sent back. */
  reasoning?: string | readonly string[];
  /** Assistant text. */
  text?: string;
  calls?: readonly ScriptedCall[];
  /** `null` sends no usage at all, as some compatible servers do. */
  usage?: ScriptedUsage | null;
  /** End the response as incomplete (`response.incomplete` / `finish_reason: 'length'`). */
  incomplete?: 'max_output_tokens' | 'content_filter';
  /**
   * Wait before the first byte of the answer (not of its faults).
   * @default 0
   */
  delayMs?: number;
  /** Failed attempts played, in order, before the answer. */
  faults?: readonly Fault[];
  /**
   * Characters per streamed delta.
   * @default the server's `chunkSize`
   */
  chunkSize?: number;
  /**
   * This answer is a compaction summary: the run's next request may replace the older part of
   * the conversation, so the append-only check starts over from that request.
   * @default false
   */
  compacts?: boolean;
}

/** A conversation item as a script function sees it, whichever wire the request came by. */
export type ScriptItem =
  | { type: 'message'; role: string; text: string }
  | { type: 'function_call'; callId: string; name: string; arguments: string }
  | { type: 'function_call_output'; callId: string; output: string }
  | { type: 'reasoning'; summary: string; encryptedContent: string | undefined };

/** The request a script function reacts to. */
export interface ScriptRequest {
  wire: Wire;
  /** Index of the turn being decided, from 0. */
  turn: number;
  model: string;
  instructions: string | undefined;
  items: ScriptItem[];
  toolNames: string[];
  /** Every tool output in the request, in order, with the name of the tool that was called. */
  toolOutputs: { callId: string; name: string | undefined; output: string }[];
  /** The last tool output, if any: what the model just learned. */
  lastToolOutput: string | undefined;
  /** The text of the last user message. */
  lastUserText: string | undefined;
  /** The parsed body, as sent. */
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** A turn given as data, or decided from the request that asks for it. */
export type ScriptStep =
  ScriptedTurn | ((request: ScriptRequest) => ScriptedTurn | Promise<ScriptedTurn>);

/** Turns in order; a generator gives an endless script (a model that never stops calling tools). */
export type Script = Iterable<ScriptStep>;

/** One request as the server saw it. */
export interface RecordedRequest {
  /** From 0, in arrival order. */
  index: number;
  method: string;
  path: string;
  wire: Wire | undefined;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it did not parse. */
  body: unknown;
  stream: boolean;
  /** The turn it was matched to, if it got that far. */
  turn: number | undefined;
  /** HTTP status sent (0 when nothing was sent). */
  status: number;
  outcome: 'pending' | 'answered' | 'fault' | 'rejected' | 'client_closed';
  /** The fault played, when `outcome` is `fault`. */
  fault: Fault['type'] | undefined;
}

/** A request the server refused because it was malformed, or came after the script ran out. */
export interface Violation {
  request: number;
  status: number;
  message: string;
}
