// An AI agent as a Node.js script, for the unix:script tests: it calls the Workload API's
// FetchX509SVID itself over Node's built-in HTTP/2 (gRPC framing by hand: no npm packages), so
// the agent attests this node process. usage: node script_agent.js SOCKET
// Prints {"code": <grpc-status number>, "message": ...}.
const http2 = require("http2");
const net = require("net");

const socket = process.argv[2];
const session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
const request = session.request({
  ":method": "POST",
  ":path": "/SpiffeWorkloadAPI/FetchX509SVID",
  "content-type": "application/grpc",
  te: "trailers",
  "workload.spiffe.io": "true",
});
let status = null;
let message = "";
let bytes = 0;
const finish = () => {
  console.log(JSON.stringify({ code: status === null ? -1 : Number(status), message, bytes }));
  session.destroy();
  process.exit(0);
};
request.on("response", (headers) => {
  if (headers["grpc-status"] !== undefined) { status = headers["grpc-status"]; message = headers["grpc-message"] || ""; }
});
request.on("trailers", (trailers) => { status = trailers["grpc-status"]; message = trailers["grpc-message"] || ""; });
request.on("data", (chunk) => {
  bytes += chunk.length;
  if (status === null) { status = "0"; finish(); }  // the first message arrived: the call succeeded
});
request.on("end", finish);
request.on("error", (error) => { message = String(error); finish(); });
// An empty X509SVIDRequest: uncompressed, length 0.
request.end(Buffer.from([0, 0, 0, 0, 0]));
setTimeout(() => { message = "timeout"; finish(); }, 30000);
