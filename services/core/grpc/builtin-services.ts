import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ServerInterceptingCall, status } from "@grpc/grpc-js";
import type { ServerInterceptor } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { EwiiError, toServiceError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import { authenticatePeer, peerRequiredError, type PeerVerifier } from "./peer.js";

/** Built by `make gen` with `buf build --as-file-descriptor-set`, imports included. */
export const DEFAULT_DESCRIPTOR_SET_PATH = fileURLToPath(new URL("../../../gen/descriptors.binpb", import.meta.url));

/** Method path prefixes of the services every Ewii server adds itself. */
const BUILTIN_METHOD_PREFIXES = ["/grpc.health.v1.", "/grpc.reflection.v1.", "/grpc.reflection.v1alpha."];

/** Field number of `repeated FileDescriptorProto file` in google.protobuf.FileDescriptorSet. */
const FILE_DESCRIPTOR_SET_FILE_FIELD = 1;

type ReflectionPackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

/**
 * Splits a serialized FileDescriptorSet into the serialized
 * FileDescriptorProtos it contains, unchanged. Keeping the bytes as buf
 * wrote them keeps each file's `dependency` list, which strict reflection
 * clients (Python grpcio, grpcurl) need to resolve imports.
 */
export function splitFileDescriptorSet(bytes: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(bytes);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === FILE_DESCRIPTOR_SET_FILE_FIELD && wireType === WireType.LengthDelimited) {
      files.push(reader.bytes());
    } else {
      reader.skip(wireType);
    }
  }
  return files;
}

/**
 * Creates the reflection service over a descriptor set, listing only the
 * named services. @grpc/reflection reads nothing but `fileDescriptorProtos`
 * from the package definition (checked on 1.0.4), so one synthetic entry
 * carries every file.
 */
export function createReflectionService(descriptorSetPath: string, serviceNames: string[]): ReflectionService {
  let bytes: Buffer;
  try {
    bytes = readFileSync(descriptorSetPath);
  } catch (err: unknown) {
    throw new EwiiError(
      "ERR_DESCRIPTOR_SET_MISSING",
      `cannot read the protobuf descriptor set ${descriptorSetPath}; run "make gen" to build it`,
      { status: status.FAILED_PRECONDITION, cause: err },
    );
  }
  const fileDescriptorProtos = splitFileDescriptorSet(bytes).map((file) => Buffer.from(file));
  const definition = { "ewii.descriptor_set": { fileDescriptorProtos } } as unknown as ReflectionPackageDefinition;
  return new ReflectionService(definition, { services: serviceNames });
}

/** Creates the health service with every named service and the overall "" entry SERVING. */
export function createHealthService(serviceNames: string[]): HealthImplementation {
  const initial: Record<string, "SERVING"> = { "": "SERVING" };
  for (const name of serviceNames) initial[name] = "SERVING";
  return new HealthImplementation(initial);
}

/**
 * Server interceptor that admits calls to health and reflection only from a
 * peer whose client certificate passes the verifier. Ewii's own methods do
 * their checks in RpcEdge and pass through untouched.
 */
export function builtinServicesAuthInterceptor(verifyPeer: PeerVerifier, logger: Logger): ServerInterceptor {
  return (descriptor, call) => {
    const method = descriptor.path;
    if (!BUILTIN_METHOD_PREFIXES.some((prefix) => method.startsWith(prefix))) return new ServerInterceptingCall(call);

    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            try {
              if (authenticatePeer(call, verifyPeer) === undefined) throw peerRequiredError(method);
            } catch (err: unknown) {
              const error = toServiceError(err, logger, { [LogField.method]: method });
              call.sendStatus({ code: error.code ?? status.UNAUTHENTICATED, details: error.details ?? "", metadata: error.metadata ?? null });
              return;
            }
            nextMetadata(metadata);
          },
        });
      },
    });
  };
}
