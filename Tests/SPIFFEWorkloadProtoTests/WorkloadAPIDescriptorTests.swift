import Foundation
import GRPCCore
import SPIFFEWorkloadProto
import SwiftProtobuf
import Testing

/// The generated Workload API code keeps what every SPIFFE client relies on: the package-less
/// service name (`/SpiffeWorkloadAPI/<Method>`), each method's streaming kind, and the field
/// numbers of the messages (checked by decoding bytes laid out by hand from workload.proto).
struct WorkloadAPIDescriptorTests {
    @Test func methodPathsAndKindsMatchTheSpec() {
        let methods: [(MethodDescriptor, String, MethodDescriptor.RPCType)] = [
            (SpiffeWorkloadAPI.Method.FetchX509SVID.descriptor, "FetchX509SVID", .serverStreaming),
            (SpiffeWorkloadAPI.Method.FetchX509Bundles.descriptor, "FetchX509Bundles", .serverStreaming),
            (SpiffeWorkloadAPI.Method.FetchJWTSVID.descriptor, "FetchJWTSVID", .unary),
            (SpiffeWorkloadAPI.Method.FetchJWTBundles.descriptor, "FetchJWTBundles", .serverStreaming),
            (SpiffeWorkloadAPI.Method.ValidateJWTSVID.descriptor, "ValidateJWTSVID", .unary),
            (SpiffeWorkloadAPI.Method.FetchWITSVID.descriptor, "FetchWITSVID", .serverStreaming),
            (SpiffeWorkloadAPI.Method.FetchWITBundles.descriptor, "FetchWITBundles", .serverStreaming),
        ]
        for (descriptor, name, kind) in methods {
            #expect(descriptor.fullyQualifiedMethod == "SpiffeWorkloadAPI/\(name)")
            #expect(descriptor.type == kind, "\(name)")
        }
    }

    @Test func x509SVIDFieldNumbersAreTheSpecs() throws {
        // X509SVIDResponse { repeated X509SVID svids = 1; repeated bytes crl = 2;
        //   map<string, bytes> federated_bundles = 3; }
        // X509SVID { string spiffe_id = 1; bytes x509_svid = 2; bytes x509_svid_key = 3;
        //   bytes bundle = 4; string hint = 5; }
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let svid = field(1, Array("spiffe://example.org/a".utf8)) + field(2, [1, 2]) + field(3, [3]) + field(4, [4, 5]) + field(5, Array("h".utf8))
        let entry = field(1, Array("spiffe://partner.org".utf8)) + field(2, [9])
        let response = try X509SVIDResponse(serializedBytes: field(1, svid) + field(2, [7]) + field(3, entry))
        let decoded = try #require(response.svids.first)
        #expect(decoded.spiffeID == "spiffe://example.org/a" && decoded.x509Svid == Data([1, 2]) && decoded.x509SvidKey == Data([3]))
        #expect(decoded.bundle == Data([4, 5]) && decoded.hint == "h")
        #expect(response.crl == [Data([7])] && response.federatedBundles == ["spiffe://partner.org": Data([9])])
    }
}
