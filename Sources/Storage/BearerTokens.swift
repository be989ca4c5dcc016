import Sealing

/// A bearer entry's kept token, as stored: when it was obtained, and its
/// seal (docs/FORMAT.md, "bearer_tokens").
public struct KeptToken: Equatable, Sendable {
    public let obtainedAt: Int64
    let box: SealedBox
}

/// How long one token served: from when it was obtained to the first time a
/// server refused it (a 401), as keyseal saw it.
public struct TokenLifetime: Equatable, Sendable {
    public let obtainedAt: Int64
    public let endedAt: Int64
    public var seconds: Int64 { endedAt - obtainedAt }
}

extension Vault {
    /// The most lifetimes kept per entry; older ones are deleted.
    public static let keptLifetimes = 20

    /// The entry's kept token, if it has one (no unlock needed to see its age).
    public func keptToken(of entry: SealedEntry) throws(StorageError) -> KeptToken? {
        try mapErrors {
            let statement = try connection.prepare("SELECT obtained_at, nonce, ciphertext FROM bearer_tokens WHERE entry_id = ?")
            try statement.bind(1, entry.metadata.id)
            guard try statement.step() else { return nil }
            guard let obtainedAt = statement.int(0), let nonce = statement.blob(1), let ciphertext = statement.blob(2) else {
                throw StorageError.damaged(path: path, detail: "the kept token of \(entry.metadata.name.debugDescription) is malformed")
            }
            return KeptToken(obtainedAt: obtainedAt, box: SealedBox(nonce: nonce, ciphertext: ciphertext))
        }
    }

    /// When the kept tokens of the entries at `indexes` were obtained, by
    /// index into `entries` (an entry without one has no key): what
    /// `keptToken(of:)` tells of each, read in one query, for `list --json`
    /// of a large vault. A malformed row fails as `keptToken(of:)` fails,
    /// for the first entry in `indexes` that has one.
    public func keptTokenTimes(of entries: [EntryMetadata], at indexes: [Int]) throws(StorageError) -> [Int: Int64] {
        guard !indexes.isEmpty else { return [:] }
        let rows: [IDKey: Int64?] = try mapErrors {
            let statement = try connection.prepare("SELECT entry_id, obtained_at, nonce, ciphertext FROM bearer_tokens")
            var rows: [IDKey: Int64?] = [:]
            while try statement.step() {
                guard let entryID = statement.blob(0) else { continue }
                // As keptToken(of:) checks them, without copying the sealed token.
                let wellFormed = statement.isBlob(2) && statement.isBlob(3)
                rows[IDKey(entryID)] = wellFormed ? statement.int(1) : nil
            }
            return rows
        }
        var times: [Int: Int64] = [:]
        for index in indexes {
            guard let row = rows[IDKey(entries[index].id)] else { continue }
            guard let obtainedAt = row else {
                throw .damaged(path: path, detail: "the kept token of \(entries[index].name.debugDescription) is malformed")
            }
            times[index] = obtainedAt
        }
        return times
    }

    /// An entry id as a dictionary key that hashes as two words (ids are 16
    /// bytes) rather than byte by byte; any other length keeps its bytes.
    private struct IDKey: Hashable {
        let high: UInt64
        let low: UInt64
        let other: [UInt8]?

        init(_ id: [UInt8]) {
            if id.count == 16 {
                (high, low, other) = id.withUnsafeBytes { bytes in
                    (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self), nil)
                }
            } else {
                (high, low, other) = (0, 0, id)
            }
        }
    }

    /// The lifetimes observed for the entry's tokens, newest first.
    public func tokenLifetimes(of entry: SealedEntry) throws(StorageError) -> [TokenLifetime] {
        try mapErrors {
            let statement = try connection.prepare(
                "SELECT obtained_at, ended_at FROM token_lifetimes WHERE entry_id = ? ORDER BY obtained_at DESC")
            try statement.bind(1, entry.metadata.id)
            var result: [TokenLifetime] = []
            while try statement.step() {
                guard let obtained = statement.int(0), let ended = statement.int(1) else {
                    throw StorageError.damaged(path: path, detail: "a token lifetime is malformed")
                }
                result.append(TokenLifetime(obtainedAt: obtained, endedAt: ended))
            }
            return result
        }
    }

    /// Sets or clears (nil) an entry's maximum token age, in seconds. Not
    /// bound into the seal, so no key is needed.
    public func setMaxAge(_ name: String, _ seconds: Int64?) throws(StorageError) {
        if let seconds, seconds <= 0 { throw .invalidField(field: "maximum token age", reason: "it must be longer than zero") }
        try setPolicy(.maxAge, of: name, to: seconds)
    }

    /// Inside a write transaction that changes an entry's key or fields: a
    /// token obtained before is dropped, never reused under the new ones.
    func dropKeptToken(entryID: [UInt8]) throws {
        let delete = try connection.prepare("DELETE FROM bearer_tokens WHERE entry_id = ?")
        try delete.bind(1, entryID)
        _ = try delete.step()
    }
}

extension UnlockedVault {
    /// Opens a kept token. One that does not authenticate (moved, altered,
    /// made younger) fails as tampering with the entry.
    public func open(_ token: KeptToken, of entry: SealedEntry) throws(StorageError) -> SecretBytes {
        let associatedData = AssociatedData.bearerToken(vaultID: vault.vaultID, entryID: entry.metadata.id, obtainedAt: token.obtainedAt)
        do {
            return try sealer.open(token.box, associatedData: associatedData)
        } catch .authenticationFailed, .invalidLength {
            throw .entryTampered(name: entry.metadata.name)
        } catch {
            throw .sealing(error)
        }
    }

    /// Keeps `token`, obtained at `obtainedAt`, for the entry, in place of any
    /// token it had; only while the entry is still the one read (same id and
    /// revision), so a token got with a key that was rotated meanwhile is
    /// not kept.
    public func keep(_ token: borrowing SecretBytes, for entry: SealedEntry, obtainedAt: Int64) throws(StorageError) {
        let associatedData = AssociatedData.bearerToken(vaultID: vault.vaultID, entryID: entry.metadata.id, obtainedAt: obtainedAt)
        try vault.mapErrors {
            let box = try sealer.seal(token, associatedData: associatedData)
            try vault.connection.immediateTransaction {
                let current = try vault.connection.prepare("SELECT 1 FROM entries WHERE entry_id = ? AND revision = ?")
                try current.bind([.blob(entry.metadata.id), .int(entry.metadata.revision)])
                guard try current.step() else { return }
                let insert = try vault.connection.prepare("""
                    INSERT INTO bearer_tokens (entry_id, obtained_at, nonce, ciphertext) VALUES (?, ?, ?, ?)
                    ON CONFLICT (entry_id) DO UPDATE SET obtained_at = excluded.obtained_at,
                        nonce = excluded.nonce, ciphertext = excluded.ciphertext
                    """)
                try insert.bind([.blob(entry.metadata.id), .int(obtainedAt), .blob(box.nonce), .blob(box.ciphertext)])
                _ = try insert.step()
            }
        }
    }

    /// A server refused the kept token obtained at `obtainedAt`: it is
    /// dropped, and its lifetime recorded (the newest `Vault.keptLifetimes`
    /// are kept).
    public func tokenRefused(_ entry: SealedEntry, obtainedAt: Int64, at now: Int64 = Vault.currentTime()) throws(StorageError) {
        try vault.mapErrors {
            try vault.connection.immediateTransaction {
                let delete = try vault.connection.prepare("DELETE FROM bearer_tokens WHERE entry_id = ? AND obtained_at = ?")
                try delete.bind([.blob(entry.metadata.id), .int(obtainedAt)])
                _ = try delete.step()
                let record = try vault.connection.prepare("""
                    INSERT INTO token_lifetimes (entry_id, obtained_at, ended_at) VALUES (?, ?, ?)
                    ON CONFLICT (entry_id, obtained_at) DO NOTHING
                    """)
                try record.bind([.blob(entry.metadata.id), .int(obtainedAt), .int(max(now, obtainedAt))])
                _ = try record.step()
                let trim = try vault.connection.prepare("""
                    DELETE FROM token_lifetimes WHERE entry_id = ?1 AND obtained_at NOT IN
                        (SELECT obtained_at FROM token_lifetimes WHERE entry_id = ?1 ORDER BY obtained_at DESC LIMIT ?2)
                    """)
                try trim.bind([.blob(entry.metadata.id), .int(Int64(Vault.keptLifetimes))])
                _ = try trim.step()
            }
        }
    }
}
