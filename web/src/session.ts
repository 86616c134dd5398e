// Who is signed in: the token's kind, project and scopes, the server's clock, and the
// projects it may see. Pages read it; nothing here decides access (the server does).
import { graphql, request } from "./graphql.ts";

export const SessionQuery = graphql(`
  query Session {
    viewer { kind tokenId projectId scopes }
    serverTime
    version
    projects { id name }
  }
`);

export interface Session {
  kind: string;
  projectId: string | null;
  scopes: string[];
  admin: boolean;
  version: string;
  projects: { id: string; name: string }[];
  /** Milliseconds the server's clock is ahead of the browser's. */
  clockOffset: number;
}

export async function loadSession(): Promise<Session> {
  const r = await request(SessionQuery, {});
  return {
    kind: r.viewer.kind,
    projectId: r.viewer.projectId ?? null,
    scopes: r.viewer.scopes,
    admin: r.viewer.scopes.includes("ADMIN"),
    version: r.version,
    projects: r.projects,
    clockOffset: new Date(r.serverTime).getTime() - Date.now(),
  };
}

/** "Now" as the server sees it. */
export function serverNow(s: Session): Date {
  return new Date(Date.now() + s.clockOffset);
}

export function projectName(s: Session, id: string | null | undefined): string {
  if (!id) return "—";
  return s.projects.find((p) => p.id === id)?.name ?? id;
}
