"""Record the usage of OpenAI calls (Chat Completions and Responses) in aispend.

The SDK response objects are built locally from what the API returns, so this runs
without an OpenAI key; in an application they come from `client.chat.completions.create`
and `client.responses.create`. Their `usage` is sent to aispend as-is.

    AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<an INGEST token bound to a project> \
        python openai_usage.py
"""

import json
import os
import sys
import urllib.request

from openai.types.chat import ChatCompletion
from openai.types.responses import Response

RECORD_USAGE = """
mutation($input: UsageInput!) {
  recordUsage(input: $input) {
    duplicate
    event { id provider model inputTokens cacheReadTokens outputTokens reasoningTokens costUsd }
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
        f"recorded {event['provider']}/{event['model']}: {event['inputTokens']} input, "
        f"{event['cacheReadTokens']} cache read, {event['outputTokens']} output "
        f"({event['reasoningTokens']} reasoning) = ${event['costUsd']}"
        + (" (already recorded)" if result["duplicate"] else "")
    )
    return event


# What `client.chat.completions.create(model="gpt-4o-2024-08-06", ...)` returns.
completion = ChatCompletion.model_validate(
    {
        "id": "chatcmpl-example-0001",
        "object": "chat.completion",
        "created": 1764800000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Your cart: 3 items, $42."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_example",
    }
)

# What `client.responses.create(model="gpt-5-mini", ...)` returns.
response = Response.model_validate(
    {
        "id": "resp_example_0001",
        "object": "response",
        "created_at": 1764800001,
        "status": "completed",
        "model": "gpt-5-mini-2025-08-07",
        "output": [
            {
                "type": "message",
                "id": "msg_example_0001",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Refund approved.", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 1328,
            "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
            "output_tokens": 452,
            "output_tokens_details": {"reasoning_tokens": 384},
            "total_tokens": 1780,
        },
    }
)

# The usage objects go to aispend untouched; the response id makes a retry safe.
record_usage(
    provider="openai",
    model=completion.model,
    usage=completion.usage.model_dump(),
    endpoint="summarise-cart",
    idempotencyKey=completion.id,
)
record_usage(
    provider="openai",
    model=response.model,
    usage=response.usage.model_dump(),
    endpoint="refund-check",
    idempotencyKey=response.id,
)
