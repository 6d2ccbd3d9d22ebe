import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";

export function clientNotConnected(clientSpiffeId: string, relayId: string): EwiiError {
  return new EwiiError("ERR_CLIENT_NOT_CONNECTED", `client ${clientSpiffeId} has no stream on relay ${relayId}; check that the client is running and enrolled, then retry`, {
    status: status.NOT_FOUND,
  });
}

export function notAHub(spiffeId: string): EwiiError {
  return new EwiiError("ERR_NOT_A_HUB", `caller ${spiffeId} is not a hub: only operator SPIFFE IDs under /service/hub may open sessions`, {
    status: status.PERMISSION_DENIED,
  });
}

export function notAClient(spiffeId: string): EwiiError {
  return new EwiiError("ERR_NOT_A_TENANT_CLIENT", `caller ${spiffeId} is not a tenant client: only SPIFFE IDs of a tenant trust domain may open client streams`, {
    status: status.PERMISSION_DENIED,
  });
}

export function revoked(spiffeId: string, sequence: number): EwiiError {
  return new EwiiError("ERR_REVOKED", `certificate of ${spiffeId} is revoked (revocation sequence ${sequence}); enroll again with a new join token`, {
    status: status.PERMISSION_DENIED,
  });
}

export function staleRevocations(reason: string): EwiiError {
  return new EwiiError("ERR_REVOCATION_STATE_STALE", `refusing new streams because revocation state cannot be confirmed: ${reason}`, {
    status: status.UNAVAILABLE,
  });
}
