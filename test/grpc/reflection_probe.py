"""Independent reflection client for the gRPC tests, on Debian's python3-grpcio.

Usage: reflection_probe.py ADDRESS CA_PEM CERT_PEM KEY_PEM SYMBOL REFLECTION_PROTO_ROOT

Compiles grpc/reflection/v1/reflection.proto from REFLECTION_PROTO_ROOT into a
temporary directory (under another file name, because the installed grpc
package owns the "grpc" Python namespace), lists the server's services, fetches the file that
defines SYMBOL with its dependencies, loads them into a fresh descriptor pool
(which fails when a dependency is missing) and prints JSON:
{"services": [...], "methods": [...], "files": [...]}.
"""

import json
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc
from google.protobuf import descriptor_pb2, descriptor_pool


def compile_reflection(proto_root, out_dir):
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    shutil.copy(os.path.join(proto_root, "grpc/reflection/v1/reflection.proto"), os.path.join(out_dir, "reflection_v1.proto"))
    args = [
        "protoc",
        f"-I{out_dir}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "reflection_v1.proto",
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed to compile reflection.proto")
    sys.path.insert(0, out_dir)


def main():
    address, ca_file, cert_file, key_file, symbol, proto_root = sys.argv[1:7]
    with tempfile.TemporaryDirectory() as out_dir:
        compile_reflection(proto_root, out_dir)
        import reflection_v1_pb2 as reflection_pb2  # noqa: E402
        import reflection_v1_pb2_grpc as reflection_pb2_grpc  # noqa: E402

        def read(path):
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(read(ca_file), read(key_file), read(cert_file))
        # The test server certificate carries DNS:localhost besides its SPIFFE URI SAN,
        # because grpcio checks host names.
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(address, creds, options) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            requests = [
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol),
            ]
            responses = list(stub.ServerReflectionInfo(iter(requests), timeout=20))

        services = [s.name for s in responses[0].list_services_response.service]
        if responses[1].HasField("error_response"):
            raise SystemExit(f"file_containing_symbol failed: {responses[1].error_response.error_message}")

        protos = []
        for raw in responses[1].file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto()
            proto.ParseFromString(raw)
            protos.append(proto)

        # Add files in dependency order; Add raises if a dependency is absent.
        pool = descriptor_pool.DescriptorPool()
        added = set()
        pending = list(protos)
        while pending:
            ready = [p for p in pending if all(d in added for d in p.dependency)]
            if not ready:
                missing = sorted({d for p in pending for d in p.dependency if d not in added})
                raise SystemExit(f"reflection returned files with unresolved dependencies: {missing}")
            for proto in ready:
                pool.Add(proto)
                added.add(proto.name)
                pending.remove(proto)

        service = pool.FindServiceByName(symbol)
        methods = [m.name for m in service.methods]
        print(json.dumps({"services": services, "methods": methods, "files": sorted(added)}))


if __name__ == "__main__":
    main()
