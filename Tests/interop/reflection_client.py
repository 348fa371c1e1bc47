"""A generic gRPC client that knows the Workload API only through server reflection, as grpcurl
does; for Writ's agent tests. It imports no Workload API stubs.

usage:
  reflection_client.py SOCKET
      1. grpcio-reflection's ProtoReflectionDescriptorDatabase (grpc.reflection.v1alpha) lists the
         services and loads SpiffeWorkloadAPI and grpc.health.v1.Health, with their imports, into
         a fresh DescriptorPool;
      2. message classes built from those descriptors call FetchX509SVID (with the
         workload.spiffe.io header) and grpc.health.v1.Health/Check; the certificate is parsed
         with cryptography;
      3. one grpc.reflection.v1 stream, with the same (wire-identical) messages, asks in order for
         workload.proto twice, an unknown symbol, nothing at all, and the file declaring the enum
         value google.protobuf.NULL_VALUE.
      Prints one JSON object with what each step saw.
"""
import json
import sys

import grpc
from cryptography import x509
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def method_shape(method):
    return {
        "input": method.input_type.full_name,
        "output": method.output_type.full_name,
        "client_streaming": method.client_streaming,
        "server_streaming": method.server_streaming,
    }


def call_through_descriptors(channel, pool):
    service = pool.FindServiceByName("SpiffeWorkloadAPI")
    fetch = service.methods_by_name["FetchX509SVID"]
    request_class = message_factory.GetMessageClass(fetch.input_type)
    response_class = message_factory.GetMessageClass(fetch.output_type)
    stream = channel.unary_stream("/%s/%s" % (service.full_name, fetch.name),
                                  request_serializer=request_class.SerializeToString,
                                  response_deserializer=response_class.FromString)
    call = stream(request_class(), metadata=(("workload.spiffe.io", "true"),), timeout=30)
    first = next(call)
    call.cancel()
    svids = []
    for svid in first.svids:
        leaf = x509.load_der_x509_certificate(svid.x509_svid[:leaf_length(svid.x509_svid)])
        uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        svids.append({"spiffe_id": svid.spiffe_id, "uri_san": uris})

    health = pool.FindServiceByName("grpc.health.v1.Health")
    check = health.methods_by_name["Check"]
    check_request = message_factory.GetMessageClass(check.input_type)
    check_response = message_factory.GetMessageClass(check.output_type)
    unary = channel.unary_unary("/%s/%s" % (health.full_name, check.name),
                                request_serializer=check_request.SerializeToString,
                                response_deserializer=check_response.FromString)
    reply = unary(check_request(service="SpiffeWorkloadAPI"), timeout=10)
    status = check.output_type.fields_by_name["status"].enum_type.values_by_number[reply.status].name
    return {"svids": svids, "health": status}


def leaf_length(der):
    """The length of the first DER element of a concatenation (a SEQUENCE with a long-form length)."""
    if der[1] < 0x80:
        return 2 + der[1]
    count = der[1] & 0x7F
    return 2 + count + int.from_bytes(der[2:2 + count], "big")


def v1_stream(channel):
    info = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    requests = [
        reflection_pb2.ServerReflectionRequest(host="writ-test", file_by_filename="spiffe/workload/workload.proto"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="spiffe/workload/workload.proto"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        reflection_pb2.ServerReflectionRequest(),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="google.protobuf.NULL_VALUE"),
    ]
    answers = []
    for response in info(iter(requests), timeout=30):
        kind = response.WhichOneof("message_response")
        if kind == "file_descriptor_response":
            files = [descriptor_pb2.FileDescriptorProto.FromString(blob) for blob in response.file_descriptor_response.file_descriptor_proto]
            answers.append({"host": response.valid_host, "files": [f.name for f in files]})
        elif kind == "error_response":
            answers.append({"error_code": response.error_response.error_code, "message": response.error_response.error_message})
        else:
            answers.append({"unexpected": kind})
    return answers


def main():
    channel = grpc.insecure_channel("unix:" + sys.argv[1])
    database = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(database.get_services())
    pool = descriptor_pool.DescriptorPool(database)
    workload = pool.FindServiceByName("SpiffeWorkloadAPI")
    result = {
        "services": services,
        "workload_file": workload.file.name,
        "workload_imports": [f.name for f in workload.file.dependencies],
        "methods": {m.name: method_shape(m) for m in workload.methods},
        "health_file": pool.FindServiceByName("grpc.health.v1.Health").file.name,
    }
    result.update(call_through_descriptors(channel, pool))
    result["v1"] = v1_stream(channel)
    channel.close()
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
