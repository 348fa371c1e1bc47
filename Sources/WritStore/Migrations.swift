/// The schema, as numbered steps. A database records the last step applied; a server applies
/// the missing ones at start, in one transaction, and refuses a database at a step it does not
/// know (written by a newer Writ).
struct Migration: Sendable {
    let version: Int
    let sqlite: [String]
    let postgres: [String]

    func statements(for kind: StoreBackendKind) -> [String] {
        kind == .sqlite ? sqlite : postgres
    }

    /// Every step, oldest first. Never edit a released step: add a new one.
    static let all: [Migration] = [
        Migration(
            version: 1,
            sqlite: [
                """
                CREATE TABLE changes (revision INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                    record_id TEXT NOT NULL, at_ms BIGINT NOT NULL)
                """,
                """
                CREATE TABLE entries (id TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, parent_id TEXT NOT NULL,
                    uniqueness_hash TEXT NOT NULL UNIQUE, x509_svid_ttl BIGINT, jwt_svid_ttl BIGINT,
                    dns_names TEXT NOT NULL, federates_with TEXT NOT NULL, admin BIGINT NOT NULL, downstream BIGINT NOT NULL,
                    hint TEXT NOT NULL, expires_at_ms BIGINT, owner TEXT NOT NULL, labels TEXT NOT NULL,
                    revision BIGINT NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX entries_parent_id ON entries (parent_id)",
                "CREATE INDEX entries_spiffe_id ON entries (spiffe_id)",
                "CREATE INDEX entries_expires_at ON entries (expires_at_ms)",
                """
                CREATE TABLE entry_selectors (entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
                    type TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (entry_id, type, value))
                """,
                "CREATE INDEX entry_selectors_type_value ON entry_selectors (type, value)",
                """
                CREATE TABLE join_tokens (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, spiffe_id TEXT,
                    expires_at_ms BIGINT NOT NULL, created_at_ms BIGINT NOT NULL)
                """,
            ],
            postgres: [
                """
                CREATE TABLE changes (revision BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL,
                    record_id TEXT NOT NULL, at_ms BIGINT NOT NULL)
                """,
                """
                CREATE TABLE entries (id TEXT COLLATE "C" PRIMARY KEY, spiffe_id TEXT NOT NULL, parent_id TEXT NOT NULL,
                    uniqueness_hash TEXT NOT NULL UNIQUE, x509_svid_ttl BIGINT, jwt_svid_ttl BIGINT,
                    dns_names TEXT NOT NULL, federates_with TEXT NOT NULL, admin BIGINT NOT NULL, downstream BIGINT NOT NULL,
                    hint TEXT NOT NULL, expires_at_ms BIGINT, owner TEXT NOT NULL, labels TEXT NOT NULL,
                    revision BIGINT NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX entries_parent_id ON entries (parent_id)",
                "CREATE INDEX entries_spiffe_id ON entries (spiffe_id)",
                "CREATE INDEX entries_expires_at ON entries (expires_at_ms)",
                """
                CREATE TABLE entry_selectors (entry_id TEXT COLLATE "C" NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
                    type TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (entry_id, type, value))
                """,
                "CREATE INDEX entry_selectors_type_value ON entry_selectors (type, value)",
                """
                CREATE TABLE join_tokens (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, spiffe_id TEXT,
                    expires_at_ms BIGINT NOT NULL, created_at_ms BIGINT NOT NULL)
                """,
            ]
        ),
        Migration(
            version: 2,
            sqlite: [
                """
                CREATE TABLE agents (id TEXT PRIMARY KEY, attestation_type TEXT NOT NULL, selectors TEXT NOT NULL,
                    serial_number TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, banned BIGINT NOT NULL, can_reattest BIGINT NOT NULL,
                    created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX agents_expires_at ON agents (expires_at_ms)",
            ],
            postgres: [
                """
                CREATE TABLE agents (id TEXT COLLATE "C" PRIMARY KEY, attestation_type TEXT NOT NULL, selectors TEXT NOT NULL,
                    serial_number TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, banned BIGINT NOT NULL, can_reattest BIGINT NOT NULL,
                    created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX agents_expires_at ON agents (expires_at_ms)",
            ]
        ),
        Migration(
            version: 3,
            sqlite: [
                """
                CREATE TABLE bundle_authorities (server_id TEXT NOT NULL, kind TEXT NOT NULL, authority_id TEXT NOT NULL,
                    data TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (server_id, kind, authority_id))
                """,
                "CREATE TABLE bundle_state (id BIGINT PRIMARY KEY, sequence BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)",
                "INSERT INTO bundle_state (id, sequence, updated_at_ms) VALUES (1, 0, 0)",
            ],
            postgres: [
                """
                CREATE TABLE bundle_authorities (server_id TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL,
                    authority_id TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, expires_at_ms BIGINT NOT NULL,
                    created_at_ms BIGINT NOT NULL, PRIMARY KEY (server_id, kind, authority_id))
                """,
                "CREATE TABLE bundle_state (id BIGINT PRIMARY KEY, sequence BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)",
                "INSERT INTO bundle_state (id, sequence, updated_at_ms) VALUES (1, 0, 0)",
            ]
        ),
        Migration(
            version: 4,
            sqlite: [
                """
                CREATE TABLE federated_bundles (trust_domain TEXT PRIMARY KEY, document TEXT NOT NULL,
                    revision BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
            ],
            postgres: [
                """
                CREATE TABLE federated_bundles (trust_domain TEXT COLLATE "C" PRIMARY KEY, document TEXT NOT NULL,
                    revision BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)
                """,
            ]
        ),
    ]

    /// The newest step this binary knows.
    static var latestVersion: Int { all.last!.version }
}
