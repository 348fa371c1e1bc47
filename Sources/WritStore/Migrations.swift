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
        // The audit log's search columns become numbers: every type, actor and target string is
        // stored once in `audit_names`, and an event and its four indexes hold the names' ids.
        // Index entries of a few bytes instead of whole SPIFFE IDs are what lets an append batch
        // touch few index pages (on SQLite it was 3× slower with the strings). Each event's leaf
        // hash moves into its own row (`leaf_hash`), so `audit_subtrees` keeps only levels 1 and
        // up: one B-tree insert per event fewer. A leaf hash that was missing becomes 32 zero
        // bytes, which verification reports at its index, rather than the event being dropped.
        // On SQLite the subtree hashes move to a table clustered on its key (no rowid B-tree).
        Migration(
            version: 6,
            sqlite: [
                "CREATE TABLE audit_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
                """
                INSERT INTO audit_names (id, name)
                SELECT ROW_NUMBER() OVER (ORDER BY name), name
                FROM (SELECT event_type AS name FROM audit_events UNION SELECT actor FROM audit_events UNION SELECT target FROM audit_events)
                """,
                """
                CREATE TABLE audit_events_v6 (leaf_index INTEGER PRIMARY KEY, body TEXT NOT NULL, type_id INTEGER NOT NULL,
                    actor_id INTEGER NOT NULL, target_id INTEGER NOT NULL, at_ms INTEGER NOT NULL, leaf_hash BLOB NOT NULL)
                """,
                """
                INSERT INTO audit_events_v6 (leaf_index, body, type_id, actor_id, target_id, at_ms, leaf_hash)
                SELECT e.leaf_index, e.body, t.id, a.id, g.id, e.at_ms, COALESCE(s.hash, zeroblob(32)) FROM audit_events e
                JOIN audit_names t ON t.name = e.event_type JOIN audit_names a ON a.name = e.actor JOIN audit_names g ON g.name = e.target
                LEFT JOIN audit_subtrees s ON s.level = 0 AND s.subtree_index = e.leaf_index
                """,
                "DROP TABLE audit_events",
                "ALTER TABLE audit_events_v6 RENAME TO audit_events",
                "CREATE INDEX audit_events_type ON audit_events (type_id, leaf_index)",
                "CREATE INDEX audit_events_actor ON audit_events (actor_id, leaf_index)",
                "CREATE INDEX audit_events_target ON audit_events (target_id, leaf_index)",
                "CREATE INDEX audit_events_time ON audit_events (at_ms, leaf_index)",
                """
                CREATE TABLE audit_subtrees_v6 (level INTEGER NOT NULL, subtree_index INTEGER NOT NULL, hash BLOB NOT NULL,
                    PRIMARY KEY (level, subtree_index)) WITHOUT ROWID
                """,
                "INSERT INTO audit_subtrees_v6 (level, subtree_index, hash) SELECT level, subtree_index, hash FROM audit_subtrees WHERE level > 0",
                "DROP TABLE audit_subtrees",
                "ALTER TABLE audit_subtrees_v6 RENAME TO audit_subtrees",
            ],
            postgres: [
                "CREATE TABLE audit_names (id BIGINT PRIMARY KEY, name TEXT COLLATE \"C\" NOT NULL UNIQUE)",
                """
                INSERT INTO audit_names (id, name)
                SELECT ROW_NUMBER() OVER (ORDER BY name), name
                FROM (SELECT event_type AS name FROM audit_events UNION SELECT actor FROM audit_events UNION SELECT target FROM audit_events) n
                """,
                "ALTER TABLE audit_events ADD COLUMN type_id BIGINT, ADD COLUMN actor_id BIGINT, ADD COLUMN target_id BIGINT, ADD COLUMN leaf_hash BYTEA",
                """
                UPDATE audit_events e SET type_id = t.id, actor_id = a.id, target_id = g.id
                FROM audit_names t, audit_names a, audit_names g
                WHERE t.name = e.event_type AND a.name = e.actor AND g.name = e.target
                """,
                """
                UPDATE audit_events e SET leaf_hash = s.hash FROM audit_subtrees s WHERE s.level = 0 AND s.subtree_index = e.leaf_index
                """,
                "UPDATE audit_events SET leaf_hash = decode(repeat('00', 32), 'hex') WHERE leaf_hash IS NULL",
                "DELETE FROM audit_subtrees WHERE level = 0",
                // Dropping the string columns drops their indexes with them.
                "ALTER TABLE audit_events DROP COLUMN event_type, DROP COLUMN actor, DROP COLUMN target",
                """
                ALTER TABLE audit_events ALTER COLUMN type_id SET NOT NULL, ALTER COLUMN actor_id SET NOT NULL,
                    ALTER COLUMN target_id SET NOT NULL, ALTER COLUMN leaf_hash SET NOT NULL
                """,
                "CREATE INDEX audit_events_type ON audit_events (type_id, leaf_index)",
                "CREATE INDEX audit_events_actor ON audit_events (actor_id, leaf_index)",
                "CREATE INDEX audit_events_target ON audit_events (target_id, leaf_index)",
            ]
        ),
    ]

    /// The newest step this binary knows.
    static var latestVersion: Int { all.last!.version }
}
