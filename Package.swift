// swift-tools-version: 6.1
//
// Writ — workload identity for AI agents and services.
// Modules are layered (see ../shared/STYLE.md and scripts/check-imports):
//   1. standards:  SPIFFEIdentity, SPIFFEBundle, SPIFFEX509, SPIFFEJWT, SPIFFEWorkloadProto, SPIFFEWorkloadAPI, SPIFFETLS,
//                  GRPCServerReflection, MerkleLog, StrictJSON, CedarCore, CedarParser, CedarValidator (the Cedar policy language)
//   2. Writ domain: WritCA, WritAudit, WritModel, WritStore (+ WritStoreSQLite, WritStorePostgres), WritConfig,
//                   WritAgentAPI, WritNodeAttestation, WritWorkloadAttestation
//   3. processes:  WritServer, WritCLI, writ (executable)
import PackageDescription

let package = Package(
    name: "writ",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "writ", targets: ["writ"]),
        .library(name: "SPIFFEIdentity", targets: ["SPIFFEIdentity"]),
        .library(name: "SPIFFEBundle", targets: ["SPIFFEBundle"]),
        .library(name: "SPIFFEX509", targets: ["SPIFFEX509"]),
        .library(name: "SPIFFEJWT", targets: ["SPIFFEJWT"]),
        .library(name: "SPIFFEWorkloadAPI", targets: ["SPIFFEWorkloadAPI"]),
        .library(name: "SPIFFETLS", targets: ["SPIFFETLS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // MARK: 1. Standards
        .target(name: "SPIFFEIdentity"),
        .target(
            name: "SPIFFEBundle",
            dependencies: [
                "SPIFFEIdentity",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SPIFFEX509",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SPIFFEJWT",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),

        // MARK: 2. Writ domain
        .target(
            name: "WritCA",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "SPIFFEJWT",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),

        // The registry's vocabulary: registration entries, selectors, and their rules.
        .target(name: "WritModel", dependencies: ["SPIFFEIdentity", "SPIFFEX509"]),
        // Configuration files (a strict TOML subset) and option schemas: flag > env > file > default.
        .target(name: "WritConfig"),
        // The datastore interface and its SQL implementation, shared by every backend.
        .target(
            name: "WritStore",
            dependencies: [
                "SPIFFEIdentity", "WritModel", "MerkleLog",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The audit log: events (schema v1, RFC 8785 canonical), group commit, signed checkpoints.
        .target(
            name: "WritAudit",
            dependencies: [
                "SPIFFEIdentity", "StrictJSON", "MerkleLog", "WritStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WritStoreSQLite",
            dependencies: [
                "WritStore",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WritStorePostgres",
            dependencies: [
                "WritStore",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The SPIFFE Workload API's wire types and gRPC stubs, generated from the verbatim
        // proto/spiffe/workload/workload.proto by scripts/generate-protos (committed; never edited
        // by hand). A target of its own: the proto has no package, so its names are global.
        .target(
            name: "SPIFFEWorkloadProto",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // The Cedar policy language (cedarpolicy.com), written for Writ: values, entities, the
        // evaluator and authorizer, JSON formats (CedarCore); policy text (CedarParser); schemas,
        // schema-based JSON and validation (CedarValidator). No dependencies beyond the stdlib.
        // A transparency log's Merkle tree (RFC 6962 / RFC 9162 hashing, tree heads, inclusion
        // and consistency proofs planned as lookups of complete subtrees), and its checkpoints as
        // C2SP signed notes (Ed25519).
        .target(name: "MerkleLog", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),

        // JSON read strictly (RFC 8259 / I-JSON: exact integers, duplicate names refused,
        // bounded depth) and written compactly or canonically (RFC 8785, JCS).
        .target(name: "StrictJSON"),

        .target(name: "CedarCore", dependencies: ["StrictJSON"]),
        .target(name: "CedarParser", dependencies: ["CedarCore"]),
        .target(name: "CedarValidator", dependencies: ["CedarCore", "CedarParser", "StrictJSON"]),

        // gRPC server reflection (grpc.reflection.v1 and v1alpha) over a catalog of file
        // descriptors; types generated from the verbatim proto/grpc/reflection/v1/reflection.proto
        // by scripts/generate-protos (committed; never edited by hand).
        .target(
            name: "GRPCServerReflection",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // The Swift SDK's Workload API client and sources: fetch and watch X.509-SVIDs, JWT-SVIDs
        // and bundles, validate JWT-SVIDs, against any SPIFFE Workload API (imports no Writ module).
        .target(
            name: "SPIFFEWorkloadAPI",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEJWT", "SPIFFEWorkloadProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),

        // The Swift SDK's TLS: X.509 sources that follow rotation, SPIFFE authorizers, and NIOSSL
        // handlers that present the current SVID and verify peers (imports no Writ module).
        .target(
            name: "SPIFFETLS",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "SPIFFEWorkloadAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),

        // Workload attestation: what the local kernel says about a calling process (uid, gids,
        // executable, the script an interpreter runs), as selectors.
        .target(
            name: "WritWorkloadAttestation",
            dependencies: [
                "WritModel",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // The agent API's wire types and gRPC stubs, generated from proto/writ/agent/v1/agent.proto
        // by scripts/generate-protos (committed; never edited by hand).
        .target(
            name: "WritAgentAPI",
            dependencies: [
                "SPIFFEIdentity", "WritModel",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // Node attestation evidence: x509pop chain verification and proof of possession (shared by
        // the server, which checks it, and the agent, which produces it).
        .target(
            name: "WritNodeAttestation",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "WritModel",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // MARK: 3. Processes
        // The server process: datastore, admin API on its Unix socket.
        .target(
            name: "WritServer",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "SPIFFEJWT", "WritCA", "WritAgentAPI", "WritNodeAttestation",
                "WritModel", "WritConfig", "WritStore", "WritStoreSQLite", "WritStorePostgres", "MerkleLog", "WritAudit", "StrictJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "WritCLI",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "SPIFFEJWT", "WritCA", "WritModel", "WritConfig", "WritServer", "WritAgent", "SPIFFEWorkloadAPI", "CedarCore", "CedarParser", "CedarValidator", "StrictJSON", "MerkleLog", "WritAudit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The node agent: attestation with its server, the sync stream, workload SVID minting and
        // rotation, and the Workload API on its Unix socket.
        .target(
            name: "WritAgent",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEJWT", "SPIFFEX509", "SPIFFEWorkloadProto", "WritModel", "WritWorkloadAttestation",
                "WritAgentAPI", "WritNodeAttestation", "WritConfig", "WritCA", "GRPCServerReflection",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "writ", dependencies: ["WritCLI"]),

        // MARK: Test support (imported by tests and test tools only)
        .target(
            name: "WritTestSupport",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "WritCA", "WritAgentAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Two workloads doing mTLS through SPIFFETLS, for the agent's acceptance tests.
        .executableTarget(
            name: "writ-test-mtls",
            dependencies: ["SPIFFETLS", "SPIFFEWorkloadAPI", "SPIFFEIdentity",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOTLS", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        // Drives a disk-backed CA through forced rotations forever; the crash test SIGKILLs it.
        .executableTarget(name: "writ-test-keyloop", dependencies: ["WritCA", "SPIFFEIdentity"]),

        // MARK: Tests
        .testTarget(name: "SPIFFEIdentityTests", dependencies: ["SPIFFEIdentity", "WritTestSupport"]),
        .testTarget(
            name: "SPIFFEBundleTests",
            dependencies: ["SPIFFEBundle", "SPIFFEIdentity", "WritTestSupport",
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto")]
        ),
        .testTarget(
            name: "SPIFFEX509Tests",
            dependencies: ["SPIFFEX509", "SPIFFEBundle", "SPIFFEIdentity", "WritTestSupport",
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto")]
        ),
        .testTarget(
            name: "SPIFFEJWTTests",
            dependencies: ["SPIFFEJWT", "SPIFFEBundle", "SPIFFEIdentity", "WritTestSupport",
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto")]
        ),
        .testTarget(
            name: "WritCATests",
            dependencies: ["WritCA", "SPIFFEX509", "SPIFFEJWT", "SPIFFEBundle", "SPIFFEIdentity", "WritTestSupport",
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),

        .testTarget(name: "WritModelTests", dependencies: ["WritModel", "SPIFFEIdentity"]),
        .testTarget(name: "WritConfigTests", dependencies: ["WritConfig"]),
        .testTarget(name: "CedarCoreTests", dependencies: ["CedarCore", "CedarParser", "WritTestSupport"]),
        .testTarget(name: "MerkleLogTests", dependencies: ["MerkleLog", "WritTestSupport", .product(name: "Crypto", package: "swift-crypto")],
                    exclude: ["Vectors"]),
        // Cedar's own integration tests (../shared/cedar-conformance, unpacked into .build).
        .testTarget(name: "CedarConformanceTests", dependencies: ["CedarCore", "CedarParser", "CedarValidator", "StrictJSON", "WritTestSupport"]),
        .testTarget(name: "StrictJSONTests", dependencies: ["StrictJSON", "WritTestSupport"]),
        .testTarget(name: "WritAuditTests", dependencies: ["WritAudit", "WritStore", "WritStoreSQLite", "MerkleLog", "StrictJSON", "SPIFFEIdentity", "WritTestSupport",
                                                           .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "GRPCServerReflectionTests",
            dependencies: ["GRPCServerReflection", "SPIFFEWorkloadProto",
                           .product(name: "GRPCCore", package: "grpc-swift-2"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .testTarget(
            name: "SPIFFEWorkloadProtoTests",
            dependencies: ["SPIFFEWorkloadProto",
                           .product(name: "GRPCCore", package: "grpc-swift-2"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .testTarget(name: "SPIFFETLSTests", dependencies: ["SPIFFETLS", "SPIFFEIdentity"]),
        .testTarget(
            name: "WritAgentTests",
            dependencies: ["WritAgent", "SPIFFEWorkloadAPI", "SPIFFEJWT", "WritCA", "WritModel", "SPIFFEIdentity", "WritWorkloadAttestation", "WritTestSupport",
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "GRPCCore", package: "grpc-swift-2"),
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "WritWorkloadAttestationTests",
            dependencies: ["WritWorkloadAttestation", "WritModel", "WritTestSupport"]
        ),
        .testTarget(
            name: "WritNodeAttestationTests",
            dependencies: ["WritNodeAttestation", "WritModel", "SPIFFEIdentity", "WritTestSupport",
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Acceptance tests: the real `writ` binary as separate processes over real sockets.
        .testTarget(
            name: "WritServerTests",
            dependencies: ["WritServer", "WritModel", "WritStore", "SPIFFEIdentity", "WritTestSupport", "WritStorePostgres", "WritStoreSQLite", "WritAudit", "MerkleLog",
                           "WritAgentAPI", "WritNodeAttestation", "SPIFFEBundle",
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "X509", package: "swift-certificates"),
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "GRPCCore", package: "grpc-swift-2"),
                           .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "SQLKit", package: "sql-kit")]
        ),
        .testTarget(
            name: "WritStoreTests",
            dependencies: ["WritStore", "WritStoreSQLite", "WritStorePostgres", "WritModel", "SPIFFEIdentity", "MerkleLog", "WritAudit", "WritTestSupport",
                           .product(name: "SQLKit", package: "sql-kit"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")]
        ),

        // MARK: Benchmarks (run by scripts/bench; scripts/test only compiles them)
        .executableTarget(
            name: "WritBenchmarks",
            dependencies: [
                "SPIFFEIdentity", "SPIFFEBundle", "SPIFFEX509", "SPIFFEJWT", "WritCA",
                "WritModel", "WritStore", "WritStoreSQLite", "WritStorePostgres",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/WritBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Full sync, cross-server propagation and the agent's Workload API against whole
        // `writ server run` and `writ agent run` processes.
        .executableTarget(
            name: "writ-bench-registry",
            dependencies: [
                "WritTestSupport", "WritAgentAPI", "WritStore", "WritStorePostgres", "SPIFFEWorkloadAPI", "SPIFFEWorkloadProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/WritRegistryBench"
        ),
        // The audit log on real datastores: committed appends, proofs at 10^4–10^7 leaves, bytes per event.
        .executableTarget(
            name: "writ-bench-audit",
            dependencies: [
                "WritAudit", "WritStore", "WritStoreSQLite", "WritStorePostgres", "MerkleLog", "StrictJSON", "SPIFFEIdentity",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/WritAuditBench",
            exclude: ["sqlite_peer.py"]
        ),
        // Writ's Cedar engine against cedarpy (Rust Cedar) on one agent/tool/user model.
        .executableTarget(
            name: "writ-bench-cedar",
            dependencies: ["CedarCore", "CedarParser", "StrictJSON", "WritTestSupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/WritCedarBench",
            exclude: ["cedarpy_batch.py"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
