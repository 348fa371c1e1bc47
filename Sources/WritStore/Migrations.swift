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
        // The audit log: events (canonical JSON, indexed by type, actor, target and time), the
        // hash of every complete subtree of their Merkle tree (level 0: the leaves), signed
        // checkpoints, and every server's log key.
        Migration(
            version: 5,
            sqlite: [
                """
                CREATE TABLE audit_events (leaf_index INTEGER PRIMARY KEY, body TEXT NOT NULL, event_type TEXT NOT NULL,
                    actor TEXT NOT NULL, target TEXT NOT NULL, at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_events_type ON audit_events (event_type, leaf_index)",
                "CREATE INDEX audit_events_actor ON audit_events (actor, leaf_index)",
                "CREATE INDEX audit_events_target ON audit_events (target, leaf_index)",
                "CREATE INDEX audit_events_time ON audit_events (at_ms, leaf_index)",
                """
                CREATE TABLE audit_subtrees (level BIGINT NOT NULL, subtree_index BIGINT NOT NULL, hash BLOB NOT NULL,
                    PRIMARY KEY (level, subtree_index))
                """,
                """
                CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, tree_size BIGINT NOT NULL, note TEXT NOT NULL,
                    key_name TEXT NOT NULL, key_id BIGINT NOT NULL, signed_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size)",
                """
                CREATE TABLE audit_log_keys (verifier_key TEXT PRIMARY KEY, server_id TEXT NOT NULL,
                    created_at_ms BIGINT NOT NULL, retired_at_ms BIGINT)
                """,
            ],
            postgres: [
                """
                CREATE TABLE audit_events (leaf_index BIGINT PRIMARY KEY, body TEXT NOT NULL, event_type TEXT COLLATE "C" NOT NULL,
                    actor TEXT COLLATE "C" NOT NULL, target TEXT COLLATE "C" NOT NULL, at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_events_type ON audit_events (event_type, leaf_index)",
                "CREATE INDEX audit_events_actor ON audit_events (actor, leaf_index)",
                "CREATE INDEX audit_events_target ON audit_events (target, leaf_index)",
                "CREATE INDEX audit_events_time ON audit_events (at_ms, leaf_index)",
                """
                CREATE TABLE audit_subtrees (level BIGINT NOT NULL, subtree_index BIGINT NOT NULL, hash BYTEA NOT NULL,
                    PRIMARY KEY (level, subtree_index))
                """,
                """
                CREATE TABLE audit_checkpoints (id BIGSERIAL PRIMARY KEY, tree_size BIGINT NOT NULL, note TEXT NOT NULL,
                    key_name TEXT NOT NULL, key_id BIGINT NOT NULL, signed_at_ms BIGINT NOT NULL)
                """,
                "CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size)",
                """
                CREATE TABLE audit_log_keys (verifier_key TEXT COLLATE "C" PRIMARY KEY, server_id TEXT NOT NULL,
                    created_at_ms BIGINT NOT NULL, retired_at_ms BIGINT)
                """,
            ]
        ),
    ]

    /// The newest step this binary knows.
    static var latestVersion: Int { all.last!.version }
}
