import CedarCore
import CedarParser
import Foundation
import StrictJSON
import Testing
import WritTestSupport

/// The minimiser, held to the real Cedar: Writ agrees with Cedar, so a disagreement is planted —
/// a "Writ" that ignores every policy using `like` — and a generated case where it shows is
/// narrowed down, then read back as an integration test.
@Suite struct MinimiserTests {
    /// Decides like Writ, except that policies using `like` are left out.
    static func ignoringLike(_ set: PolicySet, _ request: Request, _ entities: Entities) -> AuthorizationResponse {
        var kept = PolicySet()
        for (id, policy) in set.policies where !CedarText.policy(policy).contains(" like ") { try? kept.add(policy, id: id) }
        return Authorizer(policies: kept).isAuthorized(request, entities: entities)
    }

    @Test func aPlantedDisagreementIsNarrowedToASmallIntegrationTest() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("writ-minimiser-\(getpid())")
        let oracle = try CedarOracle(python: try TestEnvironment.interopPython(), directory: directory.appendingPathComponent("oracle"))
        defer {
            oracle.close()
            try? FileManager.default.removeItem(at: directory)
        }
        let minimiser = try Minimiser(question: .decision, schema: DifferentialTests.schema, oracle: oracle, decide: Self.ignoringLike)

        // A generated case on which the planted bug shows (a `like` policy decides or errs) and
        // which an integration-test harness can read.
        var generator = DifferentialTests.Generator(seed: 3)
        var rng = SeededRandom(seed: 3)
        var found: Minimiser.Case? = nil
        for _ in 0..<500 where found == nil {
            let texts = (0..<5).map { _ in generator.policy() }
            guard let parsed = try? CedarParser.policies(texts.joined(separator: "\n")), parsed.contains(where: { CedarText.policy($0).contains(" like ") }),
                  let set = try? Minimiser.policySet(parsed) else { continue }
            let entities = DifferentialTests.entities(&rng)
            guard let store = try? Entities(try CedarJSON.entities(.array(entities))) else { continue }
            for _ in 0..<10 {
                let request = DifferentialTests.request(&rng)
                guard let (p, a, r) = Minimiser.uids(request), let context = try? CedarJSON.context(request["context"]) else { continue }
                let query = Request(principal: p, action: a, resource: r, context: context)
                let candidate = Minimiser.Case(policies: texts, entities: entities, request: request)
                if minimiser.loadsAsIntegrationTest(candidate), Self.ignoringLike(set, query, store) != Authorizer(policies: set).isAuthorized(query, entities: store) {
                    found = candidate
                    break
                }
            }
        }
        let original = try #require(found, "no generated case shows the planted bug")
        let result = try #require(try minimiser.minimise(original), "the planted bug must disagree with Cedar on the case")
        let printed = try minimiser.writeIntegrationTest(result.case, cedar: result.cedar, name: "planted", to: directory)
        print("MinimiserTests: \(original.policies.count) policies and \(original.entities.count) entities narrowed in \(result.rounds) rounds to "
              + "\(result.case.policies.count) policy and \(result.case.entities.count) entities (\(result.disagreement)):\n\(printed)")

        // Small: one policy, using `like`, no longer than the generated one; fewer entities.
        #expect(result.case.policies.count == 1 && result.case.policies[0].contains(" like "), "\(result.case.policies)")
        let longestLike = original.policies.filter { $0.contains(" like ") }.map(\.count).max() ?? 0
        #expect(result.case.policies.allSatisfy { $0.count <= longestLike }, "\(result.case.policies)")
        #expect(result.case.entities.count < original.entities.count)
        // Still a disagreement with the bug, and none without it.
        #expect(minimiser.disagreement(result.case, cedar: result.cedar) != nil)
        let honest = try Minimiser(question: .decision, schema: DifferentialTests.schema, oracle: oracle)
        #expect(honest.disagreement(result.case, cedar: result.cedar) == nil)

        // The files are an integration test: it loads, has the request, and the real Writ passes it.
        let test = try IntegrationTest(file: directory.appendingPathComponent("planted.json"), base: directory)
        #expect(test.requests.count == 1)
        let (mismatches, _) = test.run()
        #expect(mismatches.isEmpty, "\(mismatches)")
    }
}
