// Record the usage of OpenAI calls (Chat Completions and Responses) in aispend.
//
// The responses are typed with the `openai` package and built locally from what the API
// returns, so this runs without an OpenAI key; in an application they come from
// `client.chat.completions.create` and `client.responses.create`. Their `usage` is sent
// to aispend as-is.
//
//   AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<an INGEST token bound to a project> \
//     node dist/openai_usage.js
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { Response } from "openai/resources/responses/responses";

const RECORD_USAGE = `mutation($input: UsageInput!) {
  recordUsage(input: $input) {
    duplicate
    event { id provider model inputTokens cacheReadTokens outputTokens reasoningTokens costUsd }
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
    `recorded ${event.provider}/${event.model}: ${event.inputTokens} input, ` +
      `${event.cacheReadTokens} cache read, ${event.outputTokens} output ` +
      `(${event.reasoningTokens} reasoning) = $${event.costUsd}` +
      (duplicate ? " (already recorded)" : ""),
  );
}

// What `client.chat.completions.create({ model: "gpt-4o-2024-08-06", ... })` returns.
const completion: ChatCompletion = {
  id: "chatcmpl-example-ts-0001",
  object: "chat.completion",
  created: 1764800000,
  model: "gpt-4o-2024-08-06",
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "Your cart: 3 items, $42.", refusal: null },
      finish_reason: "stop",
      logprobs: null,
    },
  ],
  usage: {
    prompt_tokens: 2006,
    completion_tokens: 300,
    total_tokens: 2306,
    prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: "default",
};

// What `client.responses.create({ model: "gpt-5-mini", ... })` returns.
const response = {
  id: "resp_example_ts_0001",
  object: "response",
  created_at: 1764800001,
  status: "completed",
  model: "gpt-5-mini-2025-08-07",
  output: [],
  output_text: "Refund approved.",
  parallel_tool_calls: true,
  tool_choice: "auto",
  tools: [],
  temperature: 1,
  top_p: 1,
  error: null,
  incomplete_details: null,
  instructions: null,
  metadata: {},
  usage: {
    input_tokens: 1328,
    input_tokens_details: { cached_tokens: 1024 },
    output_tokens: 452,
    output_tokens_details: { reasoning_tokens: 384 },
    total_tokens: 1780,
  },
} satisfies Response;

// The usage objects go to aispend untouched; the response id makes a retry safe.
await recordUsage({
  provider: "openai",
  model: completion.model,
  usage: completion.usage,
  endpoint: "summarise-cart",
  idempotencyKey: completion.id,
});
await recordUsage({
  provider: "openai",
  model: response.model,
  usage: response.usage,
  endpoint: "refund-check",
  idempotencyKey: response.id,
});
