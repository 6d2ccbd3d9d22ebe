import { AuditRecord, AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import { callUnary } from "../core/grpc/index.js";
import type { AuditAppender } from "./ports.js";

/** Appends through the audit service; resolves once the records are on disk there. */
export class GrpcAuditAppender implements AuditAppender {
  constructor(
    private readonly client: AuditServiceClient,
    private readonly deadlineMs: number,
  ) {}

  async append(records: Partial<AuditRecord>[], signal?: AbortSignal): Promise<number[]> {
    const response = await callUnary(this.client.append.bind(this.client), { records: records.map((record) => AuditRecord.fromPartial(record)) }, { deadlineMs: this.deadlineMs, signal });
    return response.sequences.map(Number);
  }
}
