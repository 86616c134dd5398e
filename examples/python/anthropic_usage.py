"""Record the usage of an Anthropic Messages call in aispend.

The SDK's `Message` is built locally from what the API returns, so this runs without an
Anthropic key; in an application it comes from `client.messages.create`. Its `usage`
(prompt-cache reads and 5-minute / 1-hour writes, thinking tokens, server tools) is sent
to aispend as-is.

    AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<an INGEST token bound to a project> \
        python anthropic_usage.py
"""

import json
import os
import sys
import urllib.request

from anthropic.types import Message

RECORD_USAGE = """
mutation($input: UsageInput!) {
  recordUsage(input: $input) {
    duplicate
    event {
      id provider model serviceTier inputTokens cacheReadTokens cacheWriteTokens cacheWrite1hTokens
      outputTokens reasoningTokens costUsd
    }
  }
}"""


def record_usage(**usage_input):
    """Sends one call's usage to aispend's `recordUsage` and returns the stored event."""
    url = os.environ.get("AISPEND_URL", "http://127.0.0.1:8080").rstrip("/") + "/graphql"
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": RECORD_USAGE, "variables": {"input": usage_input}}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + os.environ["AISPEND_TOKEN"],
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = json.load(answer)
    if body.get("errors"):
        sys.exit(f"aispend refused the usage: {json.dumps(body['errors'])}")
    result = body["data"]["recordUsage"]
    event = result["event"]
    print(
        f"recorded {event['provider']}/{event['model']} ({event['serviceTier']}): "
        f"{event['inputTokens']} input, {event['cacheReadTokens']} cache read, "
        f"{event['cacheWriteTokens']} + {event['cacheWrite1hTokens']} cache write (5m + 1h), "
        f"{event['outputTokens']} output ({event['reasoningTokens']} thinking) = ${event['costUsd']}"
        + (" (already recorded)" if result["duplicate"] else "")
    )
    return event


# What `client.messages.create(model="claude-sonnet-4-5", ...)` returns.
message = Message.model_validate(
    {
        "id": "msg_example_0001",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "The contract renews on 1 March."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 2500,
            "cache_read_input_tokens": 10000,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 400,
            "output_tokens_details": {"thinking_tokens": 120},
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "inference_geo": "global",
            "speed": "standard",
        },
    }
)

record_usage(
    provider="anthropic",
    model=message.model,
    usage=message.usage.model_dump(),
    endpoint="contract-qa",
    idempotencyKey=message.id,
)
