import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../ports/logger.js';
import type { SyncwalMetrics } from './metrics.js';

/**
 * The HTTP listener of `syncwal serve --metrics-port`: `GET /metrics` (or HEAD) answers the
 * Prometheus text exposition; any other path is 404 and any other method 405. Plain HTTP, no
 * authentication: bind it where only the scraper reaches (it listens on the client host).
 *
 * Bounded: at most `metricsConnectionsMax` connections (more are refused by the socket
 * layer), request headers of at most 16 KiB that must arrive within 10 s, idle keep-alive
 * connections closed after 5 s. A request body is never read.
 */

export const metricsPath = '/metrics';
export const metricsConnectionsMax = 32;
const headerBytesMax = 16 * 1024;
const headersTimeoutMs = 10_000;
const keepAliveTimeoutMs = 5_000;

export interface MetricsEndpointOptions {
  metrics: SyncwalMetrics;
  host: string;
  /** 0 picks a free port (see `listen()`'s result). */
  port: number;
  logger?: Logger;
}

export class MetricsEndpoint {
  readonly #metrics: SyncwalMetrics;
  readonly #logger: Logger;
  readonly #host: string;
  readonly #port: number;
  readonly #server: Server;

  constructor(options: MetricsEndpointOptions) {
    this.#metrics = options.metrics;
    this.#logger = options.logger ?? silentLogger;
    this.#host = options.host;
    this.#port = options.port;
    this.#server = createServer(
      {
        maxHeaderSize: headerBytesMax,
        headersTimeout: headersTimeoutMs,
        requestTimeout: headersTimeoutMs,
        keepAliveTimeout: keepAliveTimeoutMs,
      },
      (request, response) => this.#answer(request, response),
    );
    this.#server.maxConnections = metricsConnectionsMax;
  }

  /** Starts listening; rejects with the listen error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#server.once('error', onError);
      this.#server.listen({ host: this.#host, port: this.#port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (error) => {
          this.#logger.error('metrics.error', { error: error.message });
        });
        const address = this.#server.address();
        const port = typeof address === 'object' && address !== null ? address.port : this.#port;
        resolve({ host: this.#host, port });
      });
    });
  }

  #answer(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '').split('?')[0];
    if (path !== metricsPath) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`not found: metrics are at ${metricsPath}\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      response.end('method not allowed\n');
      return;
    }
    this.#metrics.render().then(
      ({ contentType, text }) => {
        response.writeHead(200, {
          'content-type': contentType,
          'content-length': Buffer.byteLength(text),
        });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        this.#logger.warn('metrics.scrape-failed', { error: String(error) });
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end('metrics could not be collected (logged by the server)\n');
      },
    );
  }

  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
