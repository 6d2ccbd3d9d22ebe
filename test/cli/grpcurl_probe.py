"""What `grpcurl list`, `grpcurl describe` and a health check do, on Debian's python3-grpcio.

Usage: grpcurl_probe.py TARGET CA_PEM CERT_PEM KEY_PEM SERVICE REFLECTION_PROTO_ROOT

Dials TARGET (for example "localhost:7401") over mTLS with no target name
override, so the server certificate must carry the host name of TARGET, as
grpcurl requires. Lists the services through server reflection v1, fetches
the file that defines SERVICE with its dependencies, loads them into a fresh
descriptor pool (which fails when a dependency is missing), and calls
grpc.health.v1.Health/Check for SERVICE. Prints JSON:
{"services": [...], "methods": [...], "health": "SERVING"}.
"""

import json
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc
from google.protobuf import descriptor_pb2, descriptor_pool

HEALTH_STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def compile_reflection(proto_root, out_dir):
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    # Renamed because the installed grpc package owns the "grpc" Python namespace.
    shutil.copy(os.path.join(proto_root, "grpc/reflection/v1/reflection.proto"), os.path.join(out_dir, "reflection_v1.proto"))
    args = ["protoc", f"-I{out_dir}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", "reflection_v1.proto"]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed to compile reflection.proto")
    sys.path.insert(0, out_dir)


def encode_health_request(service):
    """Encodes HealthCheckRequest{service = 1} by hand: one length-delimited field."""
    name = service.encode("utf-8")
    if len(name) > 127:
        raise SystemExit("service name too long for the one-byte length used here")
    return b"\x0a" + bytes([len(name)]) + name


def decode_health_status(raw):
    """Decodes HealthCheckResponse{status = 1}: an absent field is 0 (UNKNOWN)."""
    if raw == b"":
        return 0
    if len(raw) != 2 or raw[0] != 0x08:
        raise SystemExit(f"unexpected HealthCheckResponse bytes: {raw.hex()}")
    return raw[1]


def load_methods(file_protos, service):
    pool = descriptor_pool.DescriptorPool()
    added = set()
    pending = list(file_protos)
    while pending:
        ready = [p for p in pending if all(d in added for d in p.dependency)]
        if not ready:
            missing = sorted({d for p in pending for d in p.dependency if d not in added})
            raise SystemExit(f"reflection returned files with unresolved dependencies: {missing}")
        for proto in ready:
            pool.Add(proto)
            added.add(proto.name)
            pending.remove(proto)
    return [m.name for m in pool.FindServiceByName(service).methods]


def main():
    target, ca_file, cert_file, key_file, service, proto_root = sys.argv[1:7]

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    with tempfile.TemporaryDirectory() as out_dir:
        compile_reflection(proto_root, out_dir)
        import reflection_v1_pb2 as reflection_pb2  # noqa: E402
        import reflection_v1_pb2_grpc as reflection_pb2_grpc  # noqa: E402

        creds = grpc.ssl_channel_credentials(read(ca_file), read(key_file), read(cert_file))
        with grpc.secure_channel(target, creds) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            requests = [
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
            ]
            responses = list(stub.ServerReflectionInfo(iter(requests), timeout=20))
            check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
            health = decode_health_status(check(encode_health_request(service), timeout=20))

    if responses[1].HasField("error_response"):
        raise SystemExit(f"file_containing_symbol failed: {responses[1].error_response.error_message}")
    protos = []
    for raw in responses[1].file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto()
        proto.ParseFromString(raw)
        protos.append(proto)
    print(json.dumps({
        "services": [s.name for s in responses[0].list_services_response.service],
        "methods": load_methods(protos, service),
        "health": HEALTH_STATUS_NAMES.get(health, str(health)),
    }))


if __name__ == "__main__":
    main()
