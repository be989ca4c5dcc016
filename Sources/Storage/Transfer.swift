internal import CSQLite
import Sealing

/// An entry as an export carries it: everything a user set or keyseal
/// recorded, but no ids, seals or fingerprints (those belong to one vault
/// and are made anew by the vault that imports it). Kept bearer tokens and
/// token lifetimes are not carried: a token is the server's, short-lived,
/// and obtained again from the key.
public struct TransferEntry: Equatable, Sendable {
    public var name: String
    public var fields: EntryFields
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastUsedAt: Int64?
    public var warnWithin: Int64?
    public var maxAge: Int64?
    public var remoteID: String?
    public var remoteState: RemoteState?

    public init(
        name: String, fields: EntryFields, createdAt: Int64, updatedAt: Int64, lastUsedAt: Int64? = nil,
        warnWithin: Int64? = nil, maxAge: Int64? = nil, remoteID: String? = nil, remoteState: RemoteState? = nil
    ) {
        self.name = name
        self.fields = fields
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastUsedAt = lastUsedAt
        self.warnWithin = warnWithin
        self.maxAge = maxAge
        self.remoteID = remoteID
        self.remoteState = remoteState
    }

    init(_ metadata: EntryMetadata) {
        self.init(
            name: metadata.name, fields: metadata.fields, createdAt: metadata.createdAt, updatedAt: metadata.updatedAt,
            lastUsedAt: metadata.lastUsedAt, warnWithin: metadata.warnWithin, maxAge: metadata.maxAge,
            remoteID: metadata.remoteID, remoteState: metadata.remoteState)
    }

    func validate() throws(StorageError) {
        try EntryName.validate(name)
        try fields.validate()
        try Vault.validate(warnWithin: warnWithin)
        if let maxAge, maxAge <= 0 { throw .invalidField(field: "maximum token age", reason: "it must be longer than zero") }
        if let remoteID { try TextField.validate(remoteID, field: "token id", maxUTF8Length: 256, allowEmpty: false) }
    }
}

/// A value an entry held before a rotation, as an export carries it.
public struct TransferPrevious: Equatable, Sendable {
    public var version: Int64
    public var setAt: Int64
    public var replacedAt: Int64

    public init(version: Int64, setAt: Int64, replacedAt: Int64) {
        self.version = version
        self.setAt = setAt
        self.replacedAt = replacedAt
    }
}

extension UnlockedVault {
    /// Opens every entry, by name, and hands it to `entry`; then each of its
    /// previous values still kept, newest first, to `previous`. One value
    /// is open at a time, so memory stays bounded however large the vault.
    public func exportEntries(
        now: Int64 = Vault.currentTime(),
        entry: (TransferEntry, borrowing SecretBytes) throws -> Void,
        previous: (TransferPrevious, borrowing SecretBytes) throws -> Void
    ) throws {
        let statement = try vault.mapErrors { try vault.connection.prepare("SELECT \(StoredEntry.columns) FROM entries ORDER BY name") }
        while try vault.mapErrors({ try statement.step() }) {
            let stored = try vault.mapErrors { try StoredEntry(statement, path: vault.path) }
            let secret = try vault.mapErrors { try openSecret(stored) }
            try entry(TransferEntry(stored.metadata), secret)
            let values = try vault.mapErrors { try vault.storedPreviousValues(entryID: stored.metadata.id, on: vault.connection, now: now) }
            for value in values {
                let associatedData = AssociatedData.previousValue(
                    vaultID: vault.vaultID, entryID: stored.metadata.id, version: value.metadata.version,
                    setAt: value.metadata.setAt, replacedAt: value.metadata.replacedAt)
                let opened = try vault.mapErrors {
                    try openChecked(value.box, associatedData: associatedData, fingerprint: value.metadata.fingerprint, name: stored.metadata.name)
                }
                try previous(TransferPrevious(version: value.metadata.version, setAt: value.metadata.setAt, replacedAt: value.metadata.replacedAt), opened)
            }
        }
    }

    /// Imports: `source` hands entries to the session one at a time, and
    /// all are written in one transaction, or nothing if anything fails or
    /// any name conflicts without `replace`. Each entry is opened again
    /// after the commit, against the fingerprint of the value given, before
    /// this returns.
    public func importEntries(replace: Bool, now: Int64 = Vault.currentTime(), _ source: (ImportSession) throws -> Void) throws -> ImportSummary {
        let session = ImportSession(vault: vault, sealer: sealer, replace: replace, now: now)
        // The source's own errors (a malformed line, a wrong passphrase)
        // reach the caller as they are; only SQLite's are mapped.
        do {
            try vault.connection.immediateTransaction {
                try source(session)
                if !session.summary.conflicts.isEmpty { throw StorageError.importConflicts(names: session.summary.conflicts) }
            }
        } catch let error as SQLiteError {
            throw Vault.map(error, path: vault.path)
        }
        try verifyImported(session.summary.added + session.summary.replaced)
        return session.summary
    }
}

extension UnlockedVault {
    /// Opens every imported entry again, as the file now holds it: all in one
    /// read transaction with one prepared lookup (one per entry, each in a
    /// transaction of its own, took most of a 100,000-entry import: perf),
    /// and a group of entries at a time (`verifyAll`: through the agent, one
    /// wait for a group instead of one for each entry).
    func verifyImported(_ names: [String]) throws {
        let groupSize = 64
        try vault.mapErrors {
            try vault.connection.readTransaction {
                let lookup = try vault.connection.prepare("SELECT \(StoredEntry.columns) FROM entries WHERE name = ?")
                var start = 0
                while start < names.count {
                    let group = names[start..<min(start + groupSize, names.count)]
                    var checks: [SealedCheck] = []
                    checks.reserveCapacity(group.count)
                    for name in group {
                        lookup.reset()
                        do {
                            try lookup.bind(1, name)
                            guard try lookup.step() else { throw StorageError.entryNotFound(name: name) }
                            let stored = try StoredEntry(lookup, path: vault.path)
                            checks.append(SealedCheck(box: stored.box, associatedData: associatedData(of: stored),
                                                      fingerprint: stored.metadata.fingerprint))
                        } catch {
                            throw StorageError.verificationFailed(name: name)
                        }
                    }
                    for (name, opened) in zip(group, sealer.verifyAll(checks)) where !opened {
                        throw StorageError.verificationFailed(name: name)
                    }
                    start += groupSize
                }
            }
        }
    }
}

extension Vault {
    /// A dry run of an import: every entry is checked and every conflict
    /// named, nothing is written, and no key is needed.
    public func checkImport(replace: Bool, _ source: (ImportSession) throws -> Void) throws -> ImportSummary {
        let session = ImportSession(vault: self, sealer: nil, replace: replace, now: Vault.currentTime())
        try source(session)
        return session.summary
    }
}

/// What an import did (or, in a dry run, would do).
public struct ImportSummary: Equatable, Sendable {
    public internal(set) var added: [String] = []
    /// Existing entries replaced (only with `replace`).
    public internal(set) var replaced: [String] = []
    /// Names that exist already, or come twice in the source.
    public internal(set) var conflicts: [String] = []
    public internal(set) var previousValues = 0
}

/// The receiving end of one import; see `UnlockedVault.importEntries`.
public final class ImportSession {
    private let vault: Vault
    /// nil in a dry run: nothing is sealed or written.
    private let sealer: (any EntrySealer)?
    private let replace: Bool
    private let now: Int64
    public private(set) var summary = ImportSummary()
    private var seen = Set<String>()
    /// The entry that previous values given next belong to (nil after a conflict).
    private var current: (id: [UInt8], name: String)?
    /// Each statement prepared once for the whole import (`prepared`).
    private var existsStatement, deleteStatement, insertStatement, insertPreviousStatement: Statement?

    init(vault: Vault, sealer: (any EntrySealer)?, replace: Bool, now: Int64) {
        self.vault = vault
        self.sealer = sealer
        self.replace = replace
        self.now = now
    }

    private var connection: Connection { vault.connection }

    /// `slot`'s statement, prepared on first use and reset on every later one.
    private func prepared(_ slot: inout Statement?, _ sql: String) throws(SQLiteError) -> Statement {
        if let statement = slot {
            statement.reset()
            return statement
        }
        let statement = try connection.prepare(sql)
        slot = statement
        return statement
    }

    /// Takes one entry: checks it, and in an applied import writes it.
    public func add(_ entry: TransferEntry, secret: borrowing SecretBytes) throws(StorageError) {
        try entry.validate()
        try UnlockedVault.validate(secret)
        current = nil
        guard seen.insert(entry.name).inserted else {
            summary.conflicts.append(entry.name)
            return
        }
        let exists = try vault.mapErrors {
            let statement = try prepared(&existsStatement, "SELECT 1 FROM entries WHERE name = ?")
            try statement.bind(1, entry.name)
            defer { statement.reset() }
            return try statement.step()
        }
        if exists && !replace {
            summary.conflicts.append(entry.name)
            return
        }
        if exists { summary.replaced.append(entry.name) } else { summary.added.append(entry.name) }
        guard let sealer else { return }
        try vault.mapErrors {
            if exists {
                let delete = try prepared(&deleteStatement, "DELETE FROM entries WHERE name = ?")
                try delete.bind(1, entry.name)
                _ = try delete.step()
            }
            let entryID = try Random.bytes(Vault.entryIDLength)
            let binding = EntryBinding(name: entry.name, fields: entry.fields, createdAt: entry.createdAt, updatedAt: entry.updatedAt)
            let (box, fingerprint) = try sealer.sealWithFingerprint(
                secret, associatedData: AssociatedData.entry(vaultID: vault.vaultID, entryID: entryID, fields: binding))
            let insert = try prepared(&insertStatement, """
                INSERT INTO entries (name, entry_id, kind, header_template, url, description,
                    created_at, updated_at, expires_at, last_used_at, fingerprint, nonce, ciphertext, warn_within,
                    max_age, ca_certificates, remote_id, remote_state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            let fields = entry.fields
            try insert.bind([
                .text(entry.name), .blob(entryID), .text(fields.kind), .text(fields.headerTemplate),
                .text(fields.url), .text(fields.description), .int(entry.createdAt), .int(entry.updatedAt), .int(fields.expiresAt),
                .int(entry.lastUsedAt), .blob(fingerprint), .blob(box.nonce), .blob(box.ciphertext),
                .int(entry.warnWithin), .int(entry.maxAge), .text(fields.caCertificates), .text(entry.remoteID),
                .text(entry.remoteState?.rawValue),
            ])
            _ = try insert.step()
            current = (entryID, entry.name)
        }
    }

    /// Takes a previous value of the entry given last (ignored when that
    /// entry was a conflict).
    public func addPrevious(_ value: TransferPrevious, secret: borrowing SecretBytes) throws(StorageError) {
        try UnlockedVault.validate(secret)
        if value.version <= 0 { throw .invalidField(field: "previous version", reason: "a version number is above zero") }
        summary.previousValues += 1
        guard let sealer, let current else { return }
        try vault.mapErrors {
            let associatedData = AssociatedData.previousValue(
                vaultID: vault.vaultID, entryID: current.id, version: value.version, setAt: value.setAt, replacedAt: value.replacedAt)
            let (box, fingerprint) = try sealer.sealWithFingerprint(secret, associatedData: associatedData)
            let insert = try prepared(&insertPreviousStatement, """
                INSERT INTO previous_values (entry_id, version, set_at, replaced_at, fingerprint, nonce, ciphertext)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
            try insert.bind([
                .blob(current.id), .int(value.version), .int(value.setAt), .int(value.replacedAt),
                .blob(fingerprint), .blob(box.nonce), .blob(box.ciphertext),
            ])
            _ = try insert.step()
        }
    }
}
