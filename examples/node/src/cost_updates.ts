// Follow aispend's live cost updates (`costUpdates`) over a websocket with graphql-ws.
//
// Prints every recorded or re-priced event of the token's project with the running
// totals for today and this month, until interrupted (or, with AISPEND_EXIT_AFTER=N,
// once N events have arrived).
//
//   AISPEND_URL=http://127.0.0.1:8080 AISPEND_TOKEN=<a READ token> node dist/cost_updates.js
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const COST_UPDATES = `subscription($timezone: String) {
  costUpdates(timezone: $timezone) {
    kind eventCount deltaUsd
    events { provider model endpoint costUsd }
    today { costUsd }
    month { costUsd }
  }
}`;

interface CostUpdate {
  kind: string;
  eventCount: number;
  deltaUsd: string;
  events: { provider: string; model: string; endpoint: string | null; costUsd: string }[];
  today: { costUsd: string };
  month: { costUsd: string };
}

const httpUrl = (process.env.AISPEND_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const exitAfter = Number(process.env.AISPEND_EXIT_AFTER ?? "0");

const client = createClient({
  url: httpUrl.replace(/^http/, "ws") + "/graphql/ws",
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${process.env.AISPEND_TOKEN}` },
  // Resubscribe after a dropped connection (e.g. a server restart).
  retryAttempts: 5,
});

let seen = 0;
const subscription = client.iterate<{ costUpdates: CostUpdate }>({
  query: COST_UPDATES,
  variables: { timezone: process.env.AISPEND_TIMEZONE ?? "UTC" },
});
console.log(`following costUpdates on ${httpUrl}`);
for await (const result of subscription) {
  if (result.errors) {
    throw new Error(`aispend refused the subscription: ${JSON.stringify(result.errors)}`);
  }
  const update = result.data!.costUpdates;
  for (const event of update.events) {
    console.log(
      `${update.kind.toLowerCase()} ${event.provider}/${event.model}` +
        (event.endpoint ? ` [${event.endpoint}]` : "") +
        ` $${event.costUsd}; today $${update.today.costUsd}, this month $${update.month.costUsd}`,
    );
  }
  seen += update.eventCount;
  if (exitAfter > 0 && seen >= exitAfter) {
    break;
  }
}
await client.dispose();
