// Join tokens from the server's development token endpoint (GET /dev/token).

export interface DevToken {
  token: string;
  identity: string;
  name: string;
  room: string;
}

export class TokenError extends Error {}

export async function fetchDevToken(room: string, name: string): Promise<DevToken> {
  const query = new URLSearchParams({ room, name });
  let response: Response;
  try {
    response = await fetch(`/dev/token?${query}`, { cache: 'no-store' });
  } catch (err) {
    throw new TokenError(`Cannot reach the server: ${String(err)}`);
  }
  if (response.status === 404) {
    throw new TokenError(
      'The development token endpoint is disabled: this page needs the server in development mode (make dev).',
    );
  }
  if (!response.ok) {
    const detail = (await response.text()).trim();
    throw new TokenError(`Token request failed (${response.status}): ${detail || response.statusText}`);
  }
  return (await response.json()) as DevToken;
}

/** The signalling URL of the server that served this page. */
export function serverUrl(): string {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}`;
}
