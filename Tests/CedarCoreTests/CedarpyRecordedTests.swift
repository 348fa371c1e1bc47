import CedarCore
import CedarParser
import Testing

/// Conditions evaluated by Writ and by the real Cedar: every expected decision and error message
/// below was recorded from cedarpy 4.12.2 (Rust Cedar 4.12.0) deciding
/// `permit(principal, action, resource) when { <condition> };` for `User::"a"`, `Action::"v"`,
/// `R::"r"`, no entities and an empty context. They cover the traps a Swift port falls into:
/// code-point string equality, per-scalar `like`, overflow as an error, structural sets and
/// records, and the extension types' exact grammars.
@Suite struct CedarpyRecordedTests {
    enum Outcome { case allow, deny, error }

    static let recorded: [(condition: String, outcome: Outcome, message: String)] = [
        ("\"\\u{e9}\" == \"e\\u{301}\"", .deny, ""),
        ("{\"\\u{e9}\": 1, \"e\\u{301}\": 2} has \"e\\u{301}\"", .allow, ""),
        ("{\"\\u{e9}\": 1}[\"e\\u{301}\"] == 1", .error, "record does not have the attribute `e\u{301}`"),
        ("\"e\\u{301}\" like \"e*\"", .allow, ""),
        ("\"\\u{e9}\" like \"e*\"", .deny, ""),
        ("\"\\u{e9}\" like \"\\u{e9}\"", .allow, ""),
        ("\"e\\u{301}\" like \"e?\"", .deny, ""),
        ("\"a*b\" like \"a\\*b\"", .allow, ""),
        ("\"axb\" like \"a\\*b\"", .deny, ""),
        ("\"axb\" like \"a\\u{2a}b\"", .allow, ""),
        ("\"\" like \"\"", .allow, ""),
        ("\"\" like \"*\"", .allow, ""),
        ("\"abc\" like \"*c*\"", .allow, ""),
        ("\"abc\" like \"a**c\"", .allow, ""),
        ("9223372036854775807 + 1 == 0", .error, "integer overflow while attempting to add the values `9223372036854775807` and `1`"),
        ("-9223372036854775807 - 2 == 0", .error, "integer overflow while attempting to subtract the values `-9223372036854775807` and `2`"),
        ("4611686018427387904 * 2 == 0", .error, "integer overflow while attempting to multiply the values `4611686018427387904` and `2`"),
        ("-(-9223372036854775808) == 0", .error, "integer overflow while attempting to negate the value `-9223372036854775808`"),
        ("-9223372036854775808 == -9223372036854775807 - 1", .allow, ""),
        ("--9223372036854775808 == 0", .error, "integer overflow while attempting to negate the value `-9223372036854775808`"),
        ("[1,[2,3]] == [[3,2],1]", .allow, ""),
        ("[1,1,2] == [2,1]", .allow, ""),
        ("{a: 1, b: {c: 2}} == {b: {c: 2}, a: 1}", .allow, ""),
        ("{a: 1} == {a: 1, b: 2}", .deny, ""),
        ("1 == \"1\"", .deny, ""),
        ("User::\"a\" == User::\"a\"", .allow, ""),
        ("ip(\"10.0.0.1/24\") == ip(\"10.0.0.0/24\")", .deny, ""),
        ("ip(\"10.0.0.1\") == ip(\"10.0.0.1/32\")", .allow, ""),
        ("ip(\"01.2.3.4\").isIpv4()", .error, "error while evaluating `ipaddr` extension function: invalid IP address: 01.2.3.4"),
        ("ip(\"::ffff:127.0.0.1\").isIpv6()", .error, "error while evaluating `ipaddr` extension function: error parsing IP address from string: We do not accept IPv4 embedded in IPv6 (e.g., ::ffff:127.0.0.1). Found: `::ffff:127.0.0.1`"),
        ("ip(\"::ffff:ff00:1\").isIpv6()", .allow, ""),
        ("ip(\"10.0.0.0\").isInRange(ip(\"10.0.0.1/24\"))", .allow, ""),
        ("ip(\"192.168.0.75\").isInRange(ip(\"192.168.0.1/28\"))", .deny, ""),
        ("ip(\"127.0.0.2\").isLoopback()", .allow, ""),
        ("ip(\"127.255.200.200/0\").isLoopback()", .deny, ""),
        ("ip(\"ff00::/9\").isMulticast()", .allow, ""),
        ("ip(\"1:2:3:4:5:6:7::\").isIpv6()", .allow, ""),
        ("ip(\"1:2:3:4:5:6:7:8::\").isIpv6()", .error, "error while evaluating `ipaddr` extension function: invalid IP address: 1:2:3:4:5:6:7:8::"),
        ("ip(\"fe80::1%eth0\").isIpv6()", .error, "error while evaluating `ipaddr` extension function: invalid IP address: fe80::1%eth0"),
        ("ip(\"10.0.0.1/\").isIpv4()", .error, "error while evaluating `ipaddr` extension function: error parsing prefix from the string ``: cannot parse integer from empty string"),
        ("ip(\"ffee::/01\").isIpv6()", .error, "error while evaluating `ipaddr` extension function: error parsing prefix `01`: leading zero(s)"),
        ("ip(\"127.0.0.1\").isInRange(ip(\"::1\"))", .deny, ""),
        ("decimal(\"1.0\") == decimal(\"1.00\")", .allow, ""),
        ("decimal(\"-0.5\").lessThan(decimal(\"0.0\"))", .allow, ""),
        ("decimal(\"1.23456\") == decimal(\"1.2345\")", .error, "error while evaluating `decimal` extension function: too many digits after the decimal in `1.23456`"),
        ("decimal(\"922337203685477.5807\").greaterThan(decimal(\"0.0\"))", .allow, ""),
        ("decimal(\"922337203685477.5808\").greaterThan(decimal(\"0.0\"))", .error, "error while evaluating `decimal` extension function: overflow when converting to decimal"),
        ("decimal(\"1.5\") < decimal(\"2.0\")", .error, "type error: expected one of [long, datetime, duration], got decimal"),
        ("decimal(\".5\") == decimal(\"0.5\")", .error, "error while evaluating `decimal` extension function: `.5` is not a well-formed decimal value"),
        ("decimal(\"1\") == decimal(\"1.0\")", .error, "error while evaluating `decimal` extension function: `1` is not a well-formed decimal value"),
        ("decimal(\"+1.0\") == decimal(\"1.0\")", .error, "error while evaluating `decimal` extension function: `+1.0` is not a well-formed decimal value"),
        ("datetime(\"2024-10-28\") < datetime(\"2024-10-29\")", .allow, ""),
        ("datetime(\"2024-10-28T10:12:13.456-0700\") == datetime(\"2024-10-28T17:12:13.456Z\")", .allow, ""),
        ("datetime(\"2024-02-29\").toDate() == datetime(\"2024-02-29T23:59:59Z\").toDate()", .allow, ""),
        ("datetime(\"2025-02-29\") == datetime(\"2025-03-01\")", .error, "error while evaluating `datetime` extension function: invalid date: 2025-02-29"),
        ("datetime(\"2024-01-01T00:00:00\") == datetime(\"2024-01-01\")", .error, "error while evaluating `datetime` extension function: invalid millisecond and/or offset pattern"),
        ("datetime(\"2024-01-01T23:59:60Z\") == datetime(\"2024-01-01\")", .error, "error while evaluating `datetime` extension function: invalid hour/minute/second: 23:59:60"),
        ("datetime(\"2024-01-01T00:00:00+2400\") == datetime(\"2024-01-01\")", .error, "error while evaluating `datetime` extension function: invalid offset range: 240"),
        ("datetime(\"1969-12-31T12:00:00Z\").toDate() == datetime(\"1969-12-31\")", .allow, ""),
        ("datetime(\"1969-12-31T12:00:00Z\").toTime() == duration(\"12h\")", .allow, ""),
        ("datetime(\"2024-10-28T10:12:13.456-0700\").toTime() == duration(\"17h12m13s456ms\")", .allow, ""),
        ("datetime(\"2024-01-01\").durationSince(datetime(\"2023-12-31\")) == duration(\"1d\")", .allow, ""),
        ("datetime(\"2024-01-01\").offset(duration(\"-1d\")) == datetime(\"2023-12-31\")", .allow, ""),
        ("duration(\"-3d\") == duration(\"-72h\")", .allow, ""),
        ("duration(\"1d2h3m4s50ms\").toMilliseconds() == 93784050", .allow, ""),
        ("duration(\"-1d2h3m4s50ms\").toHours() == -26", .allow, ""),
        ("duration(\"-1ms\").toSeconds() == 0", .allow, ""),
        ("duration(\"1h1d\") == duration(\"25h\")", .error, "error while evaluating `duration` extension function: invalid duration pattern"),
        ("duration(\"9223372036854775807ms\").toMilliseconds() > 0", .allow, ""),
        ("duration(\"9223372036854775808ms\").toMilliseconds() > 0", .error, "error while evaluating `duration` extension function: Duration overflows internal representation"),
        ("duration(\"106751991167d\") == duration(\"1d\")", .deny, ""),
        ("duration(\"1d\") < duration(\"25h\")", .allow, ""),
        ("duration(\"1d\") < 5", .error, "type error: expected long, got duration"),
        ("1 < duration(\"1d\")", .error, "type error: expected long, got duration"),
        ("decimal(\"1.0\") < decimal(\"2.0\")", .error, "type error: expected one of [long, datetime, duration], got decimal"),
        ("datetime(\"2024-01-01\") < duration(\"1d\")", .error, "type error: expected datetime, got duration"),
        ("\"a\" < \"b\"", .error, "type error: expected one of [long, datetime, duration], got string"),
        ("true && 1", .error, "type error: expected bool, got long"),
        ("false && 1", .deny, ""),
        ("1 && false", .error, "type error: expected bool, got long"),
        ("true || 1", .allow, ""),
        ("if 1 then true else false", .error, "type error: expected bool, got long"),
        ("if true then true else 1", .allow, ""),
        ("[1].contains(1)", .allow, ""),
        ("[1, 2].containsAll([1])", .allow, ""),
        ("[1, 2].containsAny([])", .deny, ""),
        ("[].isEmpty()", .allow, ""),
        ("1.isEmpty()", .error, "type error: expected set, got long"),
        ("[1].containsAll(1)", .error, "type error: expected set, got long"),
        ("User::\"a\" in [User::\"a\", 1]", .error, "type error: expected (entity of type `any_entity_type`), got long"),
        ("User::\"a\" in [1, User::\"a\"]", .error, "type error: expected (entity of type `any_entity_type`), got long"),
        ("User::\"a\" in User::\"b\"", .deny, ""),
        ("1 in [User::\"a\"]", .error, "type error: expected (entity of type `any_entity_type`), got long"),
        ("User::\"a\".foo == 1", .error, "entity `User::\"a\"` does not exist"),
        ("User::\"a\" has foo", .deny, ""),
        ("User::\"a\".hasTag(\"t\")", .deny, ""),
        ("User::\"a\".getTag(\"t\") == 1", .error, "entity `User::\"a\"` does not exist"),
        ("{a: 1} has a.b", .error, "type error: expected one of [record, (entity of type `any_entity_type`)], got long"),
        ("{a: {b: 1}} has a.b", .allow, ""),
        ("{a: 1}.b == 1", .error, "record does not have the attribute `b`"),
        ("{a: 1}[\"a\"] == 1", .allow, ""),
        ("principal is User", .allow, ""),
        ("principal is User in User::\"x\"", .deny, ""),
        ("principal is Other in 1", .deny, ""),
        ("context has a", .deny, ""),
        ("1 + \"a\" == 1", .error, "type error: expected long, got string"),
        ("\"a\" + 1 == 1", .error, "type error: expected long, got string"),
        ("!1", .error, "type error: expected bool, got long"),
        ("-\"a\" == 1", .error, "type error: expected long, got string"),
        ("2 * 3 == 6", .allow, ""),
        ("decimal(\"1.0\").lessThan(1)", .error, "type error: expected decimal, got long"),
        ("ip(\"1.2.3.4\").lessThan(decimal(\"1.0\"))", .error, "type error: expected decimal, got ipaddr"),
        ("decimal(1) == decimal(\"1.0\")", .error, "type error: expected string, got long"),
        ("datetime(\"2024-01-01\").toDate(1) == 1", .error, "wrong number of arguments provided to extension function `toDate`: expected 1, got 2"),
    ]

    static func decide(_ condition: String) throws -> AuthorizationResponse {
        var policies = PolicySet()
        try policies.add(try CedarParser.policies("permit(principal, action, resource) when { \(condition) };")[0], id: "policy0")
        let request = Request(principal: EntityUID(type: Name("User"), id: "a"), action: EntityUID(type: Name("Action"), id: "v"),
                              resource: EntityUID(type: Name("R"), id: "r"))
        return Authorizer(policies: policies).isAuthorized(request, entities: Entities())
    }

    @Test(arguments: recorded.indices)
    func agreesWithCedar(index: Int) throws {
        let (condition, outcome, message) = Self.recorded[index]
        let response = try Self.decide(condition)
        switch outcome {
        case .allow:
            #expect(response.decision == .allow && response.errors.isEmpty, "\(condition): \(response)")
        case .deny:
            #expect(response.decision == .deny && response.errors.isEmpty, "\(condition): \(response)")
        case .error:
            #expect(response.decision == .deny && response.errors.map(\.policyID) == ["policy0"], "\(condition): \(response)")
            #expect(response.errors.first?.error.message == message, "\(condition)")
        }
    }
}
