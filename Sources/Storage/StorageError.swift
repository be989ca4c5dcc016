import Sealing

/// Every failure the storage layer reports, each with the facts a user needs
/// and nothing secret: no secret, no bound SQL value, no passphrase.
public enum StorageError: Error, Equatable, CustomStringConvertible {
    case vaultNotFound(path: String)
    case vaultExists(path: String)
    case notAVault(path: String)
    case newerFormat(path: String, found: Int64, supported: Int64)
    /// The file is a keyseal vault but its structure is broken (corrupt pages,
    /// malformed rows, impossible key-slot parameters).
    case damaged(path: String, detail: String)
    /// No key slot opened: a wrong passphrase, or a key slot altered outside
    /// keyseal; the two cannot be told apart, by design.
    case unlockFailed
    case entryNotFound(name: String)
    case entryExists(name: String)
    /// The entry changed (or was replaced) after the caller read it and
    /// before its write: nothing was written (optimistic concurrency).
    case entryChanged(name: String)
    case noPreviousValue(name: String, version: Int64?)
    case invalidName(name: String, reason: String)
    case invalidSecret(reason: String)
    case invalidField(field: String, reason: String)
    /// An entry's sealed value did not authenticate against its row: the row
    /// was edited, moved or copied outside keyseal.
    case entryTampered(name: String)
    /// `add` read its entry back and it did not match what was given.
    case verificationFailed(name: String)
    /// The vault's file is not one keyseal will use: see `UnsafeVault`.
    case unsafeVault(path: String, problem: UnsafeVault)
    case busy(path: String)
    case diskFull(path: String)
    /// A write to the vault (or its journal) failed for another reason than
    /// a full disk: a failing device (EIO), a file size limit (EFBIG). The
    /// transaction did not commit; SQLite rolls back what was written, at
    /// once or, if it could not, when the vault is next opened.
    case writeFailed(path: String, detail: String, systemErrno: Int32)
    case readOnly(path: String)
    case io(path: String, detail: String)
    case sealing(SealingError)
    case keySlotNotFound(id: Int64)
    /// Removing the last key slot would lose the vault.
    case lastKeySlot
    /// A key-slot change needs the vault key in this process, not in an agent.
    case needsVaultKey
    /// A backup would replace a file that is not a backup of this vault.
    case backupTargetOccupied(path: String)
    /// A copy (backup or restore) was made but did not verify: it was not
    /// published, or the restored vault does not open as it should.
    case copyNotVerified(path: String, report: VerifyReport)
    /// A backup (`automatic`: one keyseal takes itself before a change)
    /// could not be written at `path`; nothing was published there and the
    /// vault was not changed. `cause` is the failure of the write.
    indirect case backupNotWritten(path: String, automatic: Bool, cause: StorageError)
    /// An import names entries that exist already (or twice): nothing was written.
    case importConflicts(names: [String])

    public var description: String {
        switch self {
        case let .vaultNotFound(path): "no vault at \(path)"
        case let .vaultExists(path): "a vault already exists at \(path)"
        case let .notAVault(path): "\(path) is not a keyseal vault"
        case let .newerFormat(path, found, supported):
            "\(path) is vault format \(found), newer than this keyseal reads (format \(supported))"
        case let .damaged(path, detail): "the vault \(path) is damaged: \(detail)"
        case .unlockFailed: "the passphrase does not unlock this vault"
        case let .entryNotFound(name): "no entry named \(name.debugDescription)"
        case let .entryExists(name): "an entry named \(name.debugDescription) already exists"
        case let .entryChanged(name):
            "entry \(name.debugDescription) was changed by another keyseal since this command read it; nothing was changed"
        case let .noPreviousValue(name, version):
            version.map { "entry \(name.debugDescription) has no previous version \($0)" }
                ?? "entry \(name.debugDescription) has no previous value"
        case let .invalidName(name, reason): "invalid entry name \(name.debugDescription): \(reason)"
        case let .invalidSecret(reason): "invalid secret: \(reason)"
        case let .invalidField(field, reason): "invalid \(field): \(reason)"
        case let .entryTampered(name):
            "entry \(name.debugDescription) failed authentication: its row was altered outside keyseal"
        case let .verificationFailed(name):
            "entry \(name.debugDescription) did not read back as written"
        case let .unsafeVault(path, .symbolicLink(target)):
            "the vault \(path) is a symbolic link (to \(target)); keyseal does not follow one"
        case let .unsafeVault(path, .ownedByOther(owner)):
            "the vault \(path) belongs to another user, \(owner); keyseal uses only a vault of your own"
        case let .unsafeVault(path, .directoryOwnedByOther(directory, owner)):
            "the directory \(directory) of the vault \(path) belongs to another user, \(owner), who could replace the vault"
        case let .busy(path): "the vault \(path) is locked by another keyseal process"
        case let .diskFull(path): "no space left to write the vault \(path)"
        case let .writeFailed(path, detail, _): "cannot write the vault \(path): \(detail)"
        case let .backupNotWritten(path, automatic, cause):
            "cannot write the \(automatic ? "automatic backup" : "backup") \(path): \(cause.writeFailure)"
        case let .readOnly(path): "the vault \(path) cannot be written"
        case let .io(path, detail): "cannot use the vault \(path): \(detail)"
        case let .sealing(error): error.description
        case let .keySlotNotFound(id): "no key slot \(id)"
        case .lastKeySlot: "refusing to remove the last key slot: nothing could unlock the vault"
        case .needsVaultKey: "this needs the vault key itself, not the unlock agent"
        case let .importConflicts(names):
            "\(names.count == 1 ? "an entry" : "\(names.count) entries") of the import exist already or come twice: "
                + names.prefix(10).map(\.debugDescription).joined(separator: ", ") + (names.count > 10 ? ", ..." : "")
        case let .backupTargetOccupied(path): "\(path) exists and is not a backup of this vault"
        case let .copyNotVerified(path, report):
            "the copy at \(path) did not verify: "
                + (report.integrityProblems.first.map { "the file fails SQLite's checks (\($0))" }
                    ?? report.failures.map { "\($0.name.debugDescription) (\($0.part))" }.joined(separator: ", ") + " did not open")
        }
    }

    /// The failure of a write, without the path: what a backup error quotes.
    var writeFailure: String {
        switch self {
        case .diskFull: "no space left on the device"
        case let .writeFailed(_, detail, _), let .io(_, detail): detail
        case .readOnly: "the file cannot be written"
        default: description
        }
    }

    /// True when the failure is a full disk (or quota).
    public var isDiskFull: Bool {
        switch self {
        case .diskFull: true
        case let .backupNotWritten(_, _, cause): cause.isDiskFull
        default: false
        }
    }
}

/// Why a vault's file is refused before it is opened.
public enum UnsafeVault: Equatable, Sendable {
    /// The path is a symbolic link; `target` is what it points to.
    case symbolicLink(target: String)
    /// The file belongs to another user ("nobody (uid 65534)").
    case ownedByOther(owner: String)
    /// The directory holding it belongs to another user (not root).
    case directoryOwnedByOther(directory: String, owner: String)
}
