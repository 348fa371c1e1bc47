import Testing
@testable import WritConfig

@Suite struct TOMLDocumentTests {
    @Test func readsTablesKeysAndValues() throws {
        let document = try TOMLDocument(parsing: """
            # comment
            [server]
            name = "a \\"quoted\\" \\u00e9 value"   # trailing comment
            path = 'C:\\raw'
            port = 8_080
            on = true
            list = [1, 2,
              3, # inside
            ]
            words = ["x", 'y']

            [admin]
            uids = []
            """)
        #expect(document.tables["server"]?["name"]?.value == .string("a \"quoted\" é value"))
        #expect(document.tables["server"]?["path"]?.value == .string("C:\\raw"))
        #expect(document.tables["server"]?["port"]?.value == .integer(8080))
        #expect(document.tables["server"]?["on"]?.value == .boolean(true))
        #expect(document.tables["server"]?["list"]?.value == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(document.tables["server"]?["words"]?.value == .array([.string("x"), .string("y")]))
        #expect(document.tables["server"]?["port"]?.line == 5)
        #expect(document.tables["admin"]?["uids"]?.value == .array([]))
    }

    static let refused: [(String, Int, String)] = [
        ("[server]\nname = \"open", 2, "unterminated string"),
        ("[server]\nname = 1.5", 2, "floats and dates"),
        ("[server]\nwhen = 2026-01-01", 2, "floats and dates"),
        ("[server]\na.b = 1", 2, "dotted keys"),
        ("[server]\nt = { a = 1 }", 2, "inline tables"),
        ("[server]\nx = 1 y", 2, "one key per line"),
        ("[server]\nx = 1\nx = 2", 3, "set twice"),
        ("[server]\n[server]", 2, "appears twice"),
        ("[server]\nx = [1, 2", 2, "`]`"),
        ("[server]\nx = \"\\q\"", 2, "invalid escape"),
        ("[server]\n= 3", 2, "expected a key"),
        ("[server]\nx = yes", 2, "expected a value"),
        ("[server]\nx = \"\"\"multi\"\"\"", 2, "multi-line"),
    ]

    @Test(arguments: refused)
    func refusesWithTheLine(_ text: String, _ line: Int, _ fragment: String) {
        do {
            _ = try TOMLDocument(parsing: text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(fragment), "\(error)")
        }
    }

    @Test func valuesPrintBackAsTOML() throws {
        let value = TOMLValue.array([.string("a\"b\\c\n"), .integer(-3), .boolean(false)])
        let document = try TOMLDocument(parsing: "[t]\nk = \(value)")
        #expect(document.tables["t"]?["k"]?.value == value)
    }
}

@Suite struct ConfigSchemaTests {
    static let schema = ConfigSchema(component: "server", keys: [
        ConfigKey(table: "server", key: "data_dir", kind: .string, defaultValue: nil, help: ""),
        ConfigKey(table: "server", key: "log_level", kind: .string, defaultValue: .string("info"), help: ""),
        ConfigKey(table: "admin", key: "uids", kind: .integerList, defaultValue: .array([]), help: ""),
    ])

    @Test func namesFollowTheConvention() {
        let keys = Self.schema.keys
        #expect(keys[0].flag(component: "server") == "--data-dir" && keys[0].environment(component: "server") == "WRIT_DATA_DIR")
        #expect(keys[2].flag(component: "server") == "--admin-uids" && keys[2].environment(component: "server") == "WRIT_ADMIN_UIDS")
    }

    @Test func flagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let file = try TOMLDocument(parsing: "[server]\ndata_dir = \"/file\"\nlog_level = \"debug\"\n[admin]\nuids = [1]")
        let all = try Self.schema.resolve(file: file, environment: ["WRIT_DATA_DIR": "/env", "WRIT_ADMIN_UIDS": "7, 8"], flags: ["--data-dir": .string("/flag")])
        #expect(all.string("server", "data_dir") == "/flag" && all.source("server", "data_dir") == .flag)
        #expect(all.integers("admin", "uids") == [7, 8] && all.source("admin", "uids") == .environment)
        #expect(all.string("server", "log_level") == "debug" && all.source("server", "log_level") == .file)
        let bare = try Self.schema.resolve(file: nil, environment: [:], flags: [:])
        #expect(bare.string("server", "log_level") == "info" && bare.source("server", "log_level") == .default)
        #expect(bare.value("server", "data_dir") == nil)
    }

    @Test func unknownKeysAndWrongTypesNameTheLine() throws {
        for (text, line, fragment) in [
            ("[server]\ndata_dir = \"/x\"\ncolour = \"red\"", 3, "unknown key `server.colour`"),
            ("[client]\nx = 1", 2, "unknown table `[client]`"),
            ("stray = 1", 1, "inside a table"),
            ("[server]\nlog_level = 3", 2, "must be a value of type string"),
            ("[admin]\nuids = [\"a\"]", 2, "must be a value of type integer list"),
        ] {
            do {
                _ = try Self.schema.resolve(file: try TOMLDocument(parsing: text), environment: [:], flags: [:])
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.line == line && error.message.contains(fragment), "\(text): \(error)")
            }
        }
        #expect(throws: ConfigError.self) { try Self.schema.resolve(file: nil, environment: ["WRIT_ADMIN_UIDS": "1,x"], flags: [:]) }
    }
}
