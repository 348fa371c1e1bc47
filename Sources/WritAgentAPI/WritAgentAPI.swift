// The agent API's wire types and gRPC stubs live in Generated/, produced from
// proto/writ/agent/v1/agent.proto and proto/grpc/health/v1/health.proto by scripts/generate-protos.
// Never edit them by hand: change the .proto and regenerate.
