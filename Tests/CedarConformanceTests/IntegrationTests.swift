import CedarParser
import Foundation
import Testing

/// Cedar's own integration tests, every one of them, with no skip list: each request's
/// decision, reason set and error set must equal what Rust Cedar answered, and each policy set
/// must pass or fail strict validation exactly when Cedar's does (`shouldValidate`). Every request
/// is also decided with the policy index disabled: the answers must be identical.
@Suite struct CedarIntegrationTests {
    @Test func everyIntegrationTestAgreesWithCedar() throws {
        let files = try IntegrationCorpus.testFiles()
        #expect(files.count == IntegrationCorpus.handWrittenCount + IntegrationCorpus.generatedCount,
                "expected exactly \(IntegrationCorpus.handWrittenCount) + \(IntegrationCorpus.generatedCount) tests, found \(files.count)")
        var mismatches: [String] = []
        var requests = 0, validating = 0, refused = 0
        for (file, base) in files {
            let test = try IntegrationTest(file: file, base: base)
            requests += test.requests.count
            let (found, validated) = test.run()
            mismatches.append(contentsOf: found)
            if validated == true { validating += 1 } else if validated == false { refused += 1 }
        }
        print("Cedar integration tests: \(files.count) tests, \(requests) requests; \(validating) policy sets validate, \(refused) do not; \(mismatches.count) disagreements")
        #expect(validating > 0 && refused > 0)
        for line in mismatches.prefix(40) { print("  " + line) }
        #expect(mismatches.isEmpty, "\(mismatches.count) disagreements with Cedar; first: \(mismatches.first ?? "")")
    }

    /// The formatter on every policy file of the corpus: the same policies, every comment kept,
    /// and formatting again changes nothing.
    @Test func formattingKeepsPoliciesAndComments() throws {
        var problems: [String] = []
        var files = 0, commented = 0
        for (file, base) in try IntegrationCorpus.testFiles() {
            let test = try IntegrationTest(file: file, base: base)
            files += 1
            let (formatted, _) = try CedarFormatter.format(test.policies)
            if try CedarParser.policies(formatted) != CedarParser.policies(test.policies) { problems.append("\(test.name): the policies changed") }
            if try CedarFormatter.format(formatted).text != formatted { problems.append("\(test.name): formatting twice differs") }
            // Comments are kept verbatim and string literals keep their text: `//` occurs as often.
            let slashes = { (text: String) in text.components(separatedBy: "//").count - 1 }
            if slashes(formatted) != slashes(test.policies) {
                problems.append("\(test.name): `//` occurs \(slashes(test.policies)) times before formatting, \(slashes(formatted)) after")
            }
            if slashes(test.policies) > 0 { commented += 1 }
        }
        print("formatter: \(files) policy files, \(commented) with comments")
        #expect(files == IntegrationCorpus.handWrittenCount + IntegrationCorpus.generatedCount)
        #expect(problems.isEmpty, "\(problems.count) problems; first: \(problems.prefix(5))")
    }

    /// Cases where Writ once disagreed with Cedar (Tests/CedarRegression, each confirmed with
    /// cedarpy) stay fixed.
    @Test func regressionsStayFixed() throws {
        let folder = IntegrationCorpus.repositoryRoot.appendingPathComponent("Tests/CedarRegression")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") && $0 != "entities.json" }.sorted()
        #expect(files.count >= 4, "\(files)")
        for name in files {
            let test = try IntegrationTest(file: folder.appendingPathComponent(name), base: folder)
            let (mismatches, validated) = test.run()
            #expect(mismatches.isEmpty, "\(name): \(mismatches)")
            #expect(validated == test.shouldValidate, "\(name)")
        }
    }
}
