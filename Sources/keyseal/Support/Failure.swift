import ArgumentParser
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// The exit statuses keyseal documents (docs/keyseal.1.md, EXIT STATUS).
/// They follow sysexits(3), so scripts can tell the cases apart.
enum ExitStatus: Int32 {
    case success = 0
    /// Anything not listed below: I/O errors, a full disk, a vault kept busy.
    /// (`check`: something expires within the window.)
    case failure = 1
    /// An expired entry was refused (--refuse-expired, or the vault's
    /// refuse-expired setting). (`check`: something has expired.)
    case expired = 2
    /// `check` only: the check itself failed (as a monitoring plugin's UNKNOWN).
    case checkFailed = 3
    /// Bad arguments or bad input (name, secret, template): EX_USAGE.
    case usage = 64
    /// Not a keyseal vault, a damaged or newer-format vault, an altered entry: EX_DATAERR.
    case data = 65
    /// No such vault or entry: EX_NOINPUT.
    case notFound = 66
    /// The vault or entry already exists: EX_CANTCREAT.
    case exists = 73
    /// `edit`, `rename`: another keyseal changed the entry after this one
    /// read it and before it could write; nothing was changed, and running
    /// the command again will work: EX_TEMPFAIL.
    case changed = 75
    /// A program keyseal needs (curl) is not installed, or a server could
    /// not be reached (down, TLS failure, timeout): EX_UNAVAILABLE.
    case unavailable = 69
    /// A server's answer to the API key exchange was not what keyseal
    /// expects (an HTTP error, JSON without a token): EX_PROTOCOL.
    case protocolError = 76
    /// The vault could not be unlocked (wrong passphrase, or no way to ask),
    /// or a server refused an entry's API key: EX_NOPERM.
    case unlock = 77
    /// `run`: the command was found but could not be executed (as env(1)).
    case cannotExecute = 126
    /// `run`: the command was not found (as env(1)).
    case commandNotFound = 127
}

extension CLIError {
    /// `entryChanged`, told in the words of the command that lost the race
    /// ("this edit", "run the edit again"); any other error as it is.
    static func conflict(_ error: Error, command: String) -> Error {
        guard case let .entryChanged(name)? = error as? StorageError else { return error }
        return CLIError(.changed, "entry \(name.debugDescription) was changed by another keyseal since this \(command) read it; nothing was changed",
                        hint: "run the \(command) again")
    }
}

/// An error the CLI itself raises, with what to do about it.
struct CLIError: Error, CustomStringConvertible {
    let status: ExitStatus
    let message: String
    let hint: String?

    init(_ status: ExitStatus, _ message: String, hint: String? = nil) {
        self.status = status
        self.message = message
        self.hint = hint
    }

    var description: String { message }
}

enum Failure {
    /// Runs a command body; any failure is printed as `keyseal: error:` plus a
    /// hint and turned into its documented exit status.
    static func report(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            show(error)
            throw ExitCode(exitCode(for: error))
        }
    }

    /// Prints `error` as `keyseal: error:` plus its hint.
    static func show(_ error: Error) {
        // Names quoted in messages could hold what a terminal acts on.
        Output.error(TextTable.printable(message(for: error)), hint: hint(for: error).map(TextTable.printable))
    }

    static func message(for error: Error) -> String {
        if let error = error as? CLIError { return error.message }
        return "\(error)"
    }

    static func exitCode(for error: Error) -> Int32 {
        status(for: error).rawValue
    }

    static func status(for error: Error) -> ExitStatus {
        switch error {
        case let error as CLIError: return error.status
        case let error as StorageError:
            switch error {
            case .vaultNotFound, .entryNotFound, .noPreviousValue, .keySlotNotFound: return .notFound
            case .lastKeySlot: return .usage
            case .needsVaultKey: return .unlock
            case .vaultExists, .entryExists, .backupTargetOccupied, .importConflicts: return .exists
            case .entryChanged: return .changed
            case .notAVault, .newerFormat, .damaged, .entryTampered, .copyNotVerified: return .data
            case .unlockFailed, .unsafeVault: return .unlock
            case .invalidName, .invalidSecret, .invalidField: return .usage
            case .sealing(.kdfParametersOutOfRange): return .usage
            case .sealing(.sealerUnavailable): return .unlock
            case .verificationFailed, .busy, .diskFull, .writeFailed, .backupNotWritten, .readOnly, .io, .sealing: return .failure
            }
        default: return .failure
        }
    }

    static func hint(for error: Error) -> String? {
        if let error = error as? CLIError { return error.hint }
        guard let error = error as? StorageError else { return nil }
        switch error {
        case .vaultNotFound: return "run \"keyseal init\" to create one, or name another with --vault or KEYSEAL_VAULT"
        case .vaultExists: return "use it as it is, or name another path with --vault"
        case .notAVault: return "check --vault and KEYSEAL_VAULT; keyseal never changes a file it did not create"
        case .newerFormat: return "upgrade keyseal to read this vault"
        case .damaged: return "restore the vault from a backup; keyseal did not change its contents"
        case .unlockFailed:
            return "try again; if the passphrase is right, the vault's key slot was altered: restore it from a backup"
        case .entryNotFound: return "run \"keyseal list\" to see the entries"
        case .noPreviousValue: return "run \"keyseal show NAME\" to see the versions kept"
        case .keySlotNotFound: return "run \"keyseal key list\" to see the slots"
        case .lastKeySlot: return "add another slot first (keyseal key add --keyfile PATH)"
        case .needsVaultKey: return "give the passphrase (or key file) for this command"
        case .entryExists: return "choose another name, or remove the old entry with \"keyseal rm\""
        case .entryChanged: return "run the command again"
        case .invalidName: return "use one line of printable text, for example \"immuta-prod\""
        case .entryTampered: return "the value was not returned; restore the vault from a backup"
        case .verificationFailed: return "the entry may not be stored; check the disk, then add it again"
        case .unsafeVault(_, .symbolicLink): return "name the file itself, with --vault or KEYSEAL_VAULT"
        case .unsafeVault(_, .ownedByOther): return "run keyseal as its owner, or copy it to a file of your own"
        case .unsafeVault(_, .directoryOwnedByOther): return "keep the vault in a directory of your own"
        case .busy: return "another keyseal is writing; try again"
        case .diskFull: return "free some space; the vault is unchanged"
        case let .writeFailed(_, _, code) where code == EFBIG:
            return "the file size limit (ulimit -f) is too small for the vault; the vault is unchanged"
        case .writeFailed:
            return "check the disk (dmesg); the vault is unchanged: what was written is undone, at the latest when the vault is next opened"
        case .backupNotWritten(_, _, .diskFull): return "free some space; nothing was changed"
        case .backupNotWritten(_, _, .writeFailed): return "check the disk (dmesg); nothing was changed"
        case .backupNotWritten: return "check the directory and its permissions; nothing was changed"
        case .readOnly: return "check the file's permissions and the file system"
        case .sealing(.sealerUnavailable): return "run keyseal unlock again, or use --no-agent"
        case .importConflicts: return "nothing was imported; add --replace to replace them (an automatic backup is taken first), or rename or remove them"
        case .backupTargetOccupied: return "choose a new path; keyseal replaces only an older backup of the same vault"
        case .copyNotVerified: return "nothing was replaced; run \"keyseal verify\" on the source and restore what fails from another backup"
        case .invalidSecret, .invalidField, .io, .sealing: return nil
        }
    }
}
