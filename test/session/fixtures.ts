import { HandshakeReplayCache, HubHandshake, ClientHandshake } from "../../services/core/session/index.js";
import type { ClientHandshakeOptions, HubHandshakeOptions, Session, SessionLimits } from "../../services/core/session/index.js";
import type { CryptoSuite } from "../../services/core/crypto/index.js";
import { createTestCa, createTestVerifier, issueTestSvid } from "./pki-helper.js";
import type { TestCa, TestSvid } from "./pki-helper.js";

export const OPERATOR_DOMAIN = "operator.test";
export const TENANT_DOMAIN = "acme.tenants.operator.test";

/** CAs and SVIDs shared by the session tests; issued once because ECDSA key generation is slow-ish. */
export interface Identities {
  operatorCa: TestCa;
  tenantCa: TestCa;
  hub: TestSvid;
  rogueHub: TestSvid;
  client: TestSvid;
  otherClient: TestSvid;
}

export async function createIdentities(): Promise<Identities> {
  const operatorCa = await createTestCa(OPERATOR_DOMAIN);
  const tenantCa = await createTestCa(TENANT_DOMAIN);
  return {
    operatorCa,
    tenantCa,
    hub: await issueTestSvid(operatorCa, "/hub"),
    rogueHub: await issueTestSvid(operatorCa, "/batch-job"),
    client: await issueTestSvid(tenantCa, "/client/site-1"),
    otherClient: await issueTestSvid(tenantCa, "/client/site-2"),
  };
}

/** A settable clock in milliseconds since the Unix epoch. */
export class TestClock {
  constructor(public nowMs = Date.parse("2026-12-04T12:00:00Z")) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface PairOptions {
  hubSuite?: CryptoSuite;
  clientSuite?: CryptoSuite;
  hubClock?: TestClock;
  clientClock?: TestClock;
  limits?: Partial<SessionLimits>;
}

export function hubOptions(ids: Identities, overrides: Partial<HubHandshakeOptions> = {}): HubHandshakeOptions {
  return {
    certChainDer: ids.hub.chainDer,
    privateKey: ids.hub.privateKey,
    verifyPeer: createTestVerifier([ids.operatorCa, ids.tenantCa]),
    replayCache: new HandshakeReplayCache(),
    targetSpiffeId: ids.client.spiffeId,
    ...overrides,
  };
}

export function clientOptions(ids: Identities, overrides: Partial<ClientHandshakeOptions> = {}): ClientHandshakeOptions {
  return {
    certChainDer: ids.client.chainDer,
    privateKey: ids.client.privateKey,
    verifyPeer: createTestVerifier([ids.operatorCa, ids.tenantCa]),
    replayCache: new HandshakeReplayCache(),
    selfSpiffeId: ids.client.spiffeId,
    isAllowedHub: (spiffeId) => spiffeId === ids.hub.spiffeId,
    ...overrides,
  };
}

/** Runs a full handshake and returns both ends of the session. */
export function establishPair(ids: Identities, options: PairOptions = {}): { hub: Session; client: Session } {
  const hubClock = options.hubClock ?? new TestClock();
  const clientClock = options.clientClock ?? hubClock;
  const { message, hs } = HubHandshake.start(hubOptions(ids, { suite: options.hubSuite, now: hubClock.now, sessionLimits: options.limits }));
  const reply = ClientHandshake.respond(clientOptions(ids, { suite: options.clientSuite, now: clientClock.now, sessionLimits: options.limits }), message);
  return { hub: hs.finish(reply.message), client: reply.session };
}
