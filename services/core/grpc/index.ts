export { TlsMaterialSource, splitPemCertificates, validateTlsMaterial } from "./tls.js";
export type { TlsMaterial, TlsMaterialListener } from "./tls.js";
export { FileTlsMaterialSource, TLS_FILES_DEBOUNCE_MS, watchTlsFiles } from "./tls-files.js";
export type { TlsFiles } from "./tls-files.js";
export { RotatingServerCredentials } from "./server-credentials.js";
export { authenticatePeer, peerLeafDer, peerRequiredError } from "./peer.js";
export type { AuthContext, CallWithAuthContext, PeerIdentity, PeerVerifier } from "./peer.js";
export { openCallScope } from "./call-scope.js";
export type { CallScope } from "./call-scope.js";
export { RpcEdge, createRpcEdge, isCallAbortError } from "./rpc.js";
export type { RpcContext, RpcEdgeOptions, RpcOptions, ServerStreamContext } from "./rpc.js";
export {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  DEFAULT_SERVER_KEEPALIVE,
  startGrpcServer,
} from "./server.js";
export type { GrpcServerOptions, GrpcServiceRegistration, RunningServer } from "./server.js";
export { DEFAULT_DESCRIPTOR_SET_PATH, splitFileDescriptorSet } from "./builtin-services.js";
export {
  DEFAULT_CLIENT_KEEPALIVE,
  IP_TARGET_SERVER_NAME,
  channelOptions,
  createClientCredentials,
  dialTarget,
  spiffeIdOfCertificate,
} from "./client.js";
export type { ClientCredentialsOptions } from "./client.js";
export { DEFAULT_UNARY_DEADLINE_MS, callUnary } from "./unary-call.js";
