// Record the usage of an Anthropic Messages call in aispend.
//
// The `Message` is typed with `@anthropic-ai/sdk` and built locally from what the API
// returns, so this runs without an Anthropic key; in an application it comes from
// `client.messages.create`. Its `usage` (prompt-cache reads and 5-minute / 1-hour writes,
// thinking tokens, server tools, service tier) is sent to aispend as-is.
//
//   AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<an INGEST token bound to a project> \
//     node dist/anthropic_usage.js
import type { Message } from "@anthropic-ai/sdk/resources/messages";

const RECORD_USAGE = `mutation($input: UsageInput!) {
  recordUsage(input: $input) {
    duplicate
    event {
      id provider model serviceTier inputTokens cacheReadTokens cacheWriteTokens cacheWrite1hTokens
      outputTokens reasoningTokens costUsd
    }
  }
}`;

/** Sends one call's usage to aispend's `recordUsage` and prints the stored event. */
async function recordUsage(input: Record<string, unknown>): Promise<void> {
  const url = (process.env.AISPEND_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
  const answer = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${process.env.AISPEND_TOKEN}`,
    },
    body: JSON.stringify({ query: RECORD_USAGE, variables: { input } }),
  });
  const body = await answer.json();
  if (body.errors) {
    throw new Error(`aispend refused the usage: ${JSON.stringify(body.errors)}`);
  }
  const { duplicate, event } = body.data.recordUsage;
  console.log(
    `recorded ${event.provider}/${event.model} (${event.serviceTier}): ` +
      `${event.inputTokens} input, ${event.cacheReadTokens} cache read, ` +
      `${event.cacheWriteTokens} + ${event.cacheWrite1hTokens} cache write (5m + 1h), ` +
      `${event.outputTokens} output (${event.reasoningTokens} thinking) = $${event.costUsd}` +
      (duplicate ? " (already recorded)" : ""),
  );
}

// What `client.messages.batches.results(...)` yields for one request of a batch run on
// `claude-haiku-4-5`: batch requests are billed at the batch rate.
const message: Message = {
  id: "msg_example_ts_0001",
  type: "message",
  role: "assistant",
  model: "claude-haiku-4-5-20251001",
  content: [{ type: "text", text: "Category: billing.", citations: null }],
  stop_reason: "end_turn",
  stop_sequence: null,
  stop_details: null,
  container: null,
  diagnostics: null,
  usage: {
    input_tokens: 900,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 4000,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: 600,
    output_tokens_details: { thinking_tokens: 450 },
    server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
    service_tier: "batch",
    inference_geo: "global",
    speed: "standard",
  },
};

await recordUsage({
  provider: "anthropic",
  model: message.model,
  usage: message.usage,
  endpoint: "ticket-triage",
  idempotencyKey: message.id,
});
