// fetch for long downloads over flaky connections: a request whose connection drops (a network error, also while
// the body streams in) or that gets a 5xx / 429 is tried again with growing pauses. Bodies are read whole inside
// the retry, so a caller never sees half a body; callers read large files by ranges or shard by shard.

export interface RetryOptions {
  /** Tries after the first (default 5). */
  retries?: number;
  /** First pause in ms, doubled each time (default 500). */
  delayMs?: number;
  /** Told before each retry (for the download manager's status line). */
  onRetry?: (url: string, attempt: number, reason: string) => void;
}

const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

export function retryingFetch(base: typeof fetch = globalThis.fetch.bind(globalThis), opts: RetryOptions = {}): typeof fetch {
  const retries = opts.retries ?? 5;
  const delay = opts.delayMs ?? 500;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (let attempt = 0; ; attempt++) {
      let reason: string;
      try {
        const res = await base(input, init);
        if (!retryable(res.status) || attempt === retries) {
          if (init?.method === 'HEAD') return res;
          const body = await res.arrayBuffer();
          return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
        }
        await res.body?.cancel();
        reason = `HTTP ${res.status}`;
      } catch (e) {
        if (init?.signal?.aborted) throw e;
        if (attempt === retries) throw new Error(`${url}: the connection failed ${retries + 1} times (${e instanceof Error ? e.message : String(e)}); check the network and try again`);
        reason = e instanceof Error ? e.message : String(e);
      }
      opts.onRetry?.(url, attempt + 1, reason);
      await sleep(delay * 2 ** attempt, init?.signal);
    }
  };
}
