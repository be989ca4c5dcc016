internal import CSQLite
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file copies of a vault, taken with SQLite's online backup API: the
/// copy is one committed state even while other keyseal processes write,
/// because the source is read under a shared lock. A copy is built under a
/// temporary name (0600, O_EXCL) in the destination's directory, fsynced,
/// and only then renamed into place, so a crash leaves the previous file or
/// none, never a partial one.
enum VaultCopy {
    /// How long a copy waits for writers to finish before giving up.
    static let busyLimitMilliseconds: Int32 = 10_000

    /// A private temporary name beside `destination`, created empty.
    static func createStaging(beside destination: String, tag: String) throws(StorageError) -> String {
        let directory = FileSafety.parentDirectory(of: destination)
        let base = destination.split(separator: "/").last.map(String.init) ?? "vault"
        let suffix: String
        do { suffix = Hex.encode(try Random.bytes(6)) } catch { throw .sealing(error) }
        let staging = "\(directory)/.\(base).\(suffix).\(tag)"
        try FileSafety.createExclusive(staging)
        return staging
    }

    /// Copies every page of `source` into the empty file at `staging`, then
    /// makes the file durable.
    static func copyPages(from source: Connection, sourcePath: String, into staging: String) throws(StorageError) {
        try Vault.mapErrors(path: staging) {
            let destination = try Connection(path: staging, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)
            try destination.setBusyTimeout(milliseconds: busyLimitMilliseconds)
            try pump(from: source, sourcePath: sourcePath, to: destination)
        }
        try syncFile(staging)
    }

    /// Copies every page of `source` over `destination`, in one write
    /// transaction on the destination: other processes see the old contents
    /// or the new, and the file is never unlinked or renamed under them.
    static func pump(from source: Connection, sourcePath: String, to destination: Connection) throws {
        guard let backup = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
            throw SQLiteError(code: sqlite3_extended_errcode(destination.handle),
                              message: String(cString: sqlite3_errmsg(destination.handle)))
        }
        var status: Int32 = SQLITE_OK
        var waited: Int32 = 0
        // One step copies every page under a single read lock on the source,
        // so the copy is one committed state; a writer holding the lock makes
        // the step return BUSY, and the step is tried again.
        while true {
            status = sqlite3_backup_step(backup, -1)
            guard status == SQLITE_BUSY || status == SQLITE_LOCKED, waited < busyLimitMilliseconds else { break }
            usleep(20_000)
            waited += 20
        }
        let finish = sqlite3_backup_finish(backup)
        if status != SQLITE_DONE {
            let code = status == SQLITE_OK ? finish : status
            throw SQLiteError(code: code, message: String(cString: sqlite3_errstr(code)),
                              systemErrno: sqlite3_system_errno(destination.handle))
        }
        if finish != SQLITE_OK {
            throw SQLiteError(code: finish, message: String(cString: sqlite3_errmsg(destination.handle)),
                              systemErrno: sqlite3_system_errno(destination.handle))
        }
    }

    /// fsync(2) of a file's contents, so a rename that follows publishes data
    /// that is on the disk.
    static func syncFile(_ path: String) throws(StorageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .io(path: path, detail: "cannot open to sync: \(FileSafety.errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            let code = errno
            if code == ENOSPC || code == EDQUOT { throw .diskFull(path: path) }
            throw .writeFailed(path: path, detail: "cannot sync: \(FileSafety.errnoText())", systemErrno: code)
        }
    }

    /// Renames a finished copy over `destination` (replacing a previous
    /// backup) and makes the new name durable.
    static func publish(_ staging: String, as destination: String) throws(StorageError) {
        guard rename(staging, destination) == 0 else {
            throw .io(path: destination, detail: "cannot rename the finished copy into place: \(FileSafety.errnoText())")
        }
        FileSafety.syncDirectory(FileSafety.parentDirectory(of: destination))
    }

    static func discard(_ staging: String) {
        FileSafety.remove(staging)
        FileSafety.remove(staging + "-journal")
    }

    /// What is at `path`: nothing, a keyseal vault (with its id), or
    /// something else that a backup must not replace.
    enum Occupant: Equatable {
        case none
        case vault(id: [UInt8])
        case other
    }

    static func occupant(of path: String) -> Occupant {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .none }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .other }
        guard let connection = try? Connection(path: path, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX),
              (try? connection.scalarInt("PRAGMA application_id")) == Schema.applicationID,
              let statement = try? connection.prepare("SELECT vault_id FROM vault WHERE id = 1"),
              (try? statement.step()) == true, let id = statement.blob(0)
        else { return .other }
        return .vault(id: id)
    }
}
