// The one way the dashboard talks to the server: typed documents (checked against
// ../schema.graphql by `tsc`), POST /graphql with the signed-in token, and the
// graphql-ws socket for subscriptions.
import { initGraphQLTada, type TadaDocumentNode } from "gql.tada";
import { print } from "graphql";
import { createClient, type Client } from "graphql-ws";
import type { introspection } from "../generated/graphql-env.d.ts";

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { Decimal: string; DateTime: string; JSON: unknown; ID: string };
}>();

const TOKEN_KEY = "aispend.token";

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function storeToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  socket?.dispose();
  socket = null;
  open = false;
}

/**
 * A GraphQL error, with the server's code when it gave one and, for invalid input, the
 * field it names and what it says about that field.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly field?: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export async function request<R, V>(
  doc: TadaDocumentNode<R, V>,
  variables?: V,
): Promise<R> {
  const token = storedToken();
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: print(doc), variables: variables ?? {} }),
  });
  let body: { data?: R; errors?: { message: string; extensions?: { code?: string; field?: string; errors?: { message?: string }[] } }[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without JSON`);
  }
  if (body.errors?.length) {
    const e = body.errors[0];
    throw new ApiError(e.message, e.extensions?.code, e.extensions?.field, e.extensions?.errors?.[0]?.message);
  }
  if (!body.data) throw new ApiError(`the server answered ${response.status} without data`);
  return body.data;
}

let socket: Client | null = null;
const connected = new Set<() => void>();
let open = false;

/** Whether the subscription socket is connected (acknowledged) right now. */
export function isConnected(): boolean {
  return open;
}

/** Calls `f` whenever the subscription socket (re)connects; returns the unsubscribe. */
export function onConnected(f: () => void): () => void {
  connected.add(f);
  return () => connected.delete(f);
}

function ws(): Client {
  if (!socket) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = createClient({
      url: `${scheme}://${location.host}/graphql/ws`,
      connectionParams: () => ({ Authorization: `Bearer ${storedToken() ?? ""}` }),
      retryAttempts: 5,
      on: {
        connected: () => {
          open = true;
          connected.forEach((f) => f());
        },
        closed: () => {
          open = false;
        },
      },
    });
  }
  return socket;
}

/** Subscribes; returns the function that ends the subscription. */
export function subscribe<R, V>(
  doc: TadaDocumentNode<R, V>,
  variables: V,
  next: (data: R) => void,
  error: (message: string) => void,
): () => void {
  return ws().subscribe<R>(
    { query: print(doc), variables: variables as Record<string, unknown> },
    {
      next: (r) => {
        if (r.errors?.length) error(r.errors[0].message);
        else if (r.data) next(r.data);
      },
      error: (e) => error(e instanceof Error ? e.message : describeClose(e)),
      complete: () => {},
    },
  );
}

function describeClose(e: unknown): string {
  if (e && typeof e === "object" && "code" in e) {
    const c = e as { code: number; reason?: string };
    return `live updates closed (${c.code}${c.reason ? `: ${c.reason}` : ""})`;
  }
  return "live updates failed";
}
