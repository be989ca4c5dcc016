internal import CSQLite
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// What `verify` found: how much was opened, and what failed, by name.
public struct VerifyReport: Equatable, Sendable {
    /// One sealed value that did not open: the entry's name and which of its
    /// values ("value", "previous version 2", "kept token").
    public struct Failure: Equatable, Sendable {
        public let name: String
        public let part: String
    }

    public internal(set) var entries = 0
    public internal(set) var previousValues = 0
    public internal(set) var keptTokens = 0
    /// SQLite's integrity_check and foreign_key_check findings ("ok" is none).
    public internal(set) var integrityProblems: [String] = []
    public internal(set) var failures: [Failure] = []

    public var isIntact: Bool { integrityProblems.isEmpty && failures.isEmpty }

    public init() {}
}

extension Vault {
    /// The file's own checks: every page, index and constraint
    /// (integrity_check) and every reference between tables
    /// (foreign_key_check). No key is needed.
    public func integrityProblems() throws(StorageError) -> [String] {
        try mapErrors {
            var problems: [String] = []
            let integrity = try connection.prepare("PRAGMA integrity_check(100)")
            while try integrity.step() {
                if let line = integrity.text(0), line != "ok" { problems.append(line) }
            }
            let references = try connection.prepare("PRAGMA foreign_key_check")
            while try references.step() {
                problems.append("a row of \(references.text(0) ?? "?") refers to a missing \(references.text(2) ?? "?") row")
            }
            return problems
        }
    }

    /// Where automatic backups of the vault at `path` go: a directory beside
    /// it, `PATH.backups/`, 0700.
    public static func automaticBackupDirectory(for path: String) -> String {
        path + ".backups"
    }

    /// Copies the vault as it is now into its backups directory, named by
    /// the UTC time and `reason` (before-passwd, before-restore,
    /// before-format-3). Needs no key: the copy is sealed as the vault is.
    /// Checked with integrity_check before its name is published.
    public func automaticBackup(reason: String, now: Int64 = currentTime()) throws(StorageError) -> String {
        try Self.automaticBackup(of: connection, vaultPath: path, reason: reason, now: now)
    }

    static func automaticBackup(of connection: Connection, vaultPath: String, reason: String, now: Int64) throws(StorageError) -> String {
        let directory = automaticBackupDirectory(for: vaultPath)
        try writingBackup(at: directory, automatic: true) { () throws(StorageError) in try FileSafety.ensureDirectory(directory) }
        let stem = "\(directory)/\(Self.utcStamp(now))-\(reason)"
        var destination = stem + ".db"
        var attempt = 1
        while FileSafety.exists(destination) {
            attempt += 1
            destination = "\(stem)-\(attempt).db"
        }
        try writingBackup(at: destination, automatic: true) { () throws(StorageError) in
            let staging = try VaultCopy.createStaging(beside: destination, tag: "tmp")
            defer { VaultCopy.discard(staging) }
            try VaultCopy.copyPages(from: connection, sourcePath: vaultPath, into: staging)
            try mapErrors(path: staging) {
                let copy = try Connection(path: staging, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX)
                guard try copy.scalarText("PRAGMA quick_check") == "ok" else {
                    throw StorageError.damaged(path: staging, detail: "the automatic backup did not pass quick_check")
                }
            }
            try FileSafety.linkWithoutReplacing(staging, to: destination)
            FileSafety.syncDirectory(directory)
        }
        return destination
    }

    /// Runs the steps that write a backup to `destination` (through a
    /// temporary file beside it) and reports a failed write as the backup's,
    /// under the name the user knows: a full disk while copying is not
    /// "no space left to write the vault .vault.db.3f2a.tmp".
    static func writingBackup(at destination: String, automatic: Bool, _ body: () throws(StorageError) -> Void) throws(StorageError) {
        do {
            try body()
        } catch {
            switch error {
            case .diskFull, .writeFailed, .io, .readOnly:
                throw .backupNotWritten(path: destination, automatic: automatic, cause: error)
            default:
                throw error
            }
        }
    }

    /// Opens a private copy of the vault file at `source`, made beside
    /// `destination`: restore reads a backup this way, so the backup itself
    /// is never written to (opening an older format migrates the copy, not
    /// the backup). Remove it with `discardPrivateCopy`.
    public static func openPrivateCopy(of source: String, beside destination: String) throws(StorageError) -> Vault {
        switch VaultCopy.occupant(of: source) {
        case .none: throw .vaultNotFound(path: source)
        case .other: throw .notAVault(path: source)
        case .vault: break
        }
        try FileSafety.ensureDirectory(FileSafety.parentDirectory(of: destination))
        let staging = try VaultCopy.createStaging(beside: destination, tag: "restore")
        do {
            try mapErrors(path: source) {
                let reader = try Connection(path: source, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX)
                try reader.setBusyTimeout(milliseconds: VaultCopy.busyLimitMilliseconds)
                try naming(destination, for: staging) { () throws(StorageError) in
                    try VaultCopy.copyPages(from: reader, sourcePath: source, into: staging)
                }
            }
            return try open(at: staging, backupBeforeMigrating: false, ownCopy: true)
        } catch {
            VaultCopy.discard(staging)
            throw error
        }
    }

    /// Reports a failed write to the temporary file `staging` under the
    /// name of the vault it is made for: the user never named the former.
    static func naming(_ path: String, for staging: String, _ body: () throws(StorageError) -> Void) throws(StorageError) {
        do {
            try body()
        } catch .diskFull(staging) {
            throw .diskFull(path: path)
        } catch let .writeFailed(failed, detail, code) where failed == staging {
            throw .writeFailed(path: path, detail: detail, systemErrno: code)
        } catch let .io(failed, detail) where failed == staging {
            throw .io(path: path, detail: detail)
        }
    }

    /// Removes a file made by `openPrivateCopy` (and its journal, if any).
    public static func discardPrivateCopy(_ path: String) {
        VaultCopy.discard(path)
    }

    /// 20261129T213000Z: sorts by time, and is safe in a file name.
    public static func utcStamp(_ time: Int64) -> String {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }
}

extension UnlockedVault {
    /// Opens every sealed value of the vault, current and previous values and
    /// kept tokens, and runs the file's own checks. Reports the entries that
    /// fail by name rather than stopping at the first.
    public func verify(now: Int64 = Vault.currentTime()) throws(StorageError) -> VerifyReport {
        var report = VerifyReport()
        report.integrityProblems = try vault.integrityProblems()
        try vault.mapErrors {
            let statement = try vault.connection.prepare("SELECT \(StoredEntry.columns) FROM entries ORDER BY name")
            while try statement.step() {
                let stored = try StoredEntry(statement, path: vault.path)
                let name = stored.metadata.name
                report.entries += 1
                if (try? openSecret(stored)) == nil { report.failures.append(.init(name: name, part: "value")) }
                for value in try vault.storedPreviousValues(entryID: stored.metadata.id, on: vault.connection, now: now) {
                    report.previousValues += 1
                    let associatedData = AssociatedData.previousValue(
                        vaultID: vault.vaultID, entryID: stored.metadata.id, version: value.metadata.version,
                        setAt: value.metadata.setAt, replacedAt: value.metadata.replacedAt)
                    if (try? openChecked(value.box, associatedData: associatedData, fingerprint: value.metadata.fingerprint, name: name)) == nil {
                        report.failures.append(.init(name: name, part: "previous version \(value.metadata.version)"))
                    }
                }
                let sealed = SealedEntry(stored: stored)
                if let token = try vault.keptToken(of: sealed) {
                    report.keptTokens += 1
                    if (try? open(token, of: sealed)) == nil { report.failures.append(.init(name: name, part: "kept token")) }
                }
            }
        }
        return report
    }

    /// Writes a consistent copy of the vault to `destination`, sealed as the
    /// vault is (same key slots), and reports success only after the copy
    /// has been opened and every value in it verified. The copy is checked
    /// under its temporary name; a destination that is there already is
    /// replaced only if it is a backup of this same vault.
    public func backup(to destination: String, now: Int64 = Vault.currentTime()) throws(StorageError) -> VerifyReport {
        if destination == vault.path || (FileSafety.exists(destination) && FileSafety.sameFile(destination, vault.path)) {
            throw .invalidField(field: "backup path", reason: "it is the vault itself")
        }
        switch VaultCopy.occupant(of: destination) {
        case .none: break
        case let .vault(id) where id == vault.vaultID: break
        case .vault, .other: throw .backupTargetOccupied(path: destination)
        }
        var report = VerifyReport()
        try Vault.writingBackup(at: destination, automatic: false) { () throws(StorageError) in
            try FileSafety.ensureDirectory(FileSafety.parentDirectory(of: destination))
            let staging = try VaultCopy.createStaging(beside: destination, tag: "tmp")
            defer { VaultCopy.discard(staging) }
            try VaultCopy.copyPages(from: vault.connection, sourcePath: vault.path, into: staging)
            report = try Self.verifyCopy(at: staging, of: vault.vaultID, with: sealer, now: now, ownCopy: true)
            guard report.isIntact else { throw .copyNotVerified(path: destination, report: report) }
            try VaultCopy.publish(staging, as: destination)
        }
        return report
    }

    /// Opens the file at `path` as a vault with this key and verifies it.
    static func verifyCopy(
        at path: String, of vaultID: [UInt8], with sealer: any EntrySealer, now: Int64, ownCopy: Bool = false
    ) throws(StorageError) -> VerifyReport {
        let copy = try Vault.open(at: path, backupBeforeMigrating: true, ownCopy: ownCopy)
        guard copy.vaultID == vaultID else {
            throw .damaged(path: path, detail: "the copy has another vault id than its source")
        }
        return try UnlockedVault(vault: copy, sealer: sealer).verify(now: now)
    }
}

extension Vault {
    /// Replaces the contents of the vault at `path` with `backup`'s, through
    /// SQLite's backup API: one write transaction on the live file, which is
    /// never unlinked or renamed, so another process that has it open sees
    /// the old contents or the new. `backup` must verify first, and the
    /// result is verified again with its key. A vault already at `path` is
    /// first copied to its automatic backups; that path is returned.
    /// `kept` is told the automatic backup's path as soon as it exists, so
    /// that a restore that fails after it can still say where it is.
    public static func restore(
        at path: String, from backup: UnlockedVault, now: Int64 = currentTime(), kept: (String) -> Void = { _ in }
    ) throws(StorageError) -> (report: VerifyReport, previous: String?) {
        let checked = try backup.verify(now: now)
        guard checked.isIntact else { throw .copyNotVerified(path: backup.vault.path, report: checked) }
        var previous: String?
        switch VaultCopy.occupant(of: path) {
        case .other:
            throw .notAVault(path: path)
        case .none:
            // Nothing to replace: publish a copy, never over a file that
            // appeared meanwhile.
            try FileSafety.ensureDirectory(FileSafety.parentDirectory(of: path))
            try FileSafety.checkDirectoryOwner(of: path)
            let staging = try VaultCopy.createStaging(beside: path, tag: "tmp")
            defer { VaultCopy.discard(staging) }
            try naming(path, for: staging) { () throws(StorageError) in
                try VaultCopy.copyPages(from: backup.vault.connection, sourcePath: backup.vault.path, into: staging)
            }
            try FileSafety.linkWithoutReplacing(staging, to: path)
            FileSafety.syncDirectory(FileSafety.parentDirectory(of: path))
        case .vault:
            // The vault's file is checked as every open checks it, before it is written.
            _ = try FileSafety.inspectVault(path)
            try mapErrors(path: path) {
                let live = try Connection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)
                try live.setBusyTimeout(milliseconds: VaultCopy.busyLimitMilliseconds)
                try Schema.ensureRollbackJournal(live)
                let saved = try automaticBackup(of: live, vaultPath: path, reason: "before-restore", now: now)
                previous = saved
                kept(saved)
                try VaultCopy.pump(from: backup.vault.connection, sourcePath: backup.vault.path, to: live)
            }
        }
        let report = try UnlockedVault.verifyCopy(at: path, of: backup.vault.vaultID, with: backup.sealer, now: now)
        guard report.isIntact else { throw .copyNotVerified(path: path, report: report) }
        return (report, previous)
    }
}
