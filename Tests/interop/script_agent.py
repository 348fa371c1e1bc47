"""An AI agent as a Python script, for the unix:script/unix:script_sha256 tests: it asks the
Workload API for its X.509-SVIDs itself (so the agent attests *this* interpreter process).

usage: script_agent.py SOCKET [WAIT_FILE]
  With WAIT_FILE, waits until that file exists before asking (so a test can change the script
  on disk while this process runs). Prints {"code": "OK", "ids": [...]} or {"code": STATUS}.
"""
import json
import os
import sys
import time

import grpc
from spiffe._proto import workload_pb2, workload_pb2_grpc


def main():
    socket = sys.argv[1]
    if len(sys.argv) > 2:
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.05)
    channel = grpc.insecure_channel("unix:" + socket)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
    try:
        stream = stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=[("workload.spiffe.io", "true")], timeout=30)
        message = next(stream)
        stream.cancel()
        print(json.dumps({"code": "OK", "ids": [svid.spiffe_id for svid in message.svids]}))
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name, "details": error.details()}))
    finally:
        channel.close()


main()
