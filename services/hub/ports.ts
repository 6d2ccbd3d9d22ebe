import type { KeyObject } from "node:crypto";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import type { QueryRequest, SessionMessage, Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { RequestErrorCode } from "../policy/index.js";

/** An open end-to-end session to one client, able to carry many queries. */
export interface ClientConnection {
  readonly clientSpiffeId: string;
  /** Serial of the client SVID that completed the handshake. */
  readonly clientSerial: string;
  /** The client's leaf certificate, DER, as verified in the handshake. */
  readonly clientCertDer: Buffer;
  readonly clientPublicKey: KeyObject;
  readonly relayId: string;
  /**
   * Sends a query and yields the client's messages for it (columns, row
   * chunks, then a summary). Aborting the signal sends a cancel to the client.
   * `onRowBytes` receives the protobuf encoding of every received row, as
   * the client sent it, before the chunk that contains it is yielded.
   */
  query(request: QueryRequest, signal: AbortSignal, onRowBytes?: (encoded: Uint8Array) => void): AsyncIterable<SessionMessage>;
  /** Closes the session, for example because the client's identity was revoked. */
  close(reason: string): void;
  readonly closed: boolean;
}

/** Opens or reuses sessions to clients through the relays that hold their streams. */
export interface ClientConnector {
  connect(clientSpiffeId: string, signal: AbortSignal): Promise<ClientConnection>;
  /** Open sessions, for revocation enforcement and listing. */
  connections(): ClientConnection[];
  close(): Promise<void>;
}

/** A policy decision, as the hub records it. */
export interface HubDecision {
  effect: "allow" | "deny";
  rule: string;
  policyVersion: number;
  reason: string;
  maxRows: number;
  /** SHA-256 of the catalog SQL per engine; empty when the query is not in the catalog. */
  sqlSha256ByEngine: Record<string, string>;
  /** Set when the request itself is invalid and no rule was consulted. */
  requestError?: RequestErrorCode;
}

export interface DecisionRequest {
  principal: string;
  tenant: string;
  dataset: string;
  queryId: string;
  params: Record<string, Value>;
}

/** Evaluates policy locally on the latest snapshot streamed from the policy service. */
export interface PolicyGate {
  decide(request: DecisionRequest): HubDecision;
}

/** Appends audit records and resolves once they are durable. */
export interface AuditAppender {
  append(records: Partial<AuditRecord>[], signal?: AbortSignal): Promise<number[]>;
}
