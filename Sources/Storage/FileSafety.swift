#if canImport(Glibc)
import Glibc
#endif

/// File-system steps whose exact semantics matter: directories 0700 and
/// files 0600 whatever the umask, exclusive creation, no-replace publication.
enum FileSafety {
    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// True when anything is at `path`, a dangling symbolic link included.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates each missing directory of `path` with mode 0700 (mkdir -p);
    /// directories that already exist are left as their owner set them.
    static func ensureDirectory(_ path: String) throws(StorageError) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path { try ensureDirectory(parent) }
        if mkdir(path, directoryMode) != 0 && errno != EEXIST {
            throw .io(path: path, detail: "cannot create directory: \(errnoText())")
        }
        // mkdir applies the umask; 0700 must hold under any umask.
        if chmod(path, directoryMode) != 0 {
            throw .io(path: path, detail: "cannot set directory mode 0700: \(errnoText())")
        }
    }

    /// Creates an empty file that did not exist, with mode 0600 whatever the umask.
    static func createExclusive(_ path: String) throws(StorageError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw .io(path: path, detail: "cannot create file: \(errnoText())") }
        defer { close(fd) }
        guard fchmod(fd, fileMode) == 0 else {
            throw .io(path: path, detail: "cannot set file mode 0600: \(errnoText())")
        }
    }

    /// Publishes `source` under `destination` only if no file is there:
    /// link(2) fails with EEXIST rather than replacing, unlike rename(2).
    static func linkWithoutReplacing(_ source: String, to destination: String) throws(StorageError) {
        guard link(source, destination) == 0 else {
            if errno == EEXIST { throw .vaultExists(path: destination) }
            throw .io(path: destination, detail: "cannot publish the new vault: \(errnoText())")
        }
    }

    /// Makes a new directory entry durable.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Checks the file a vault is opened from, before SQLite sees it, with
    /// one lstat(2) of the file and one stat(2) of its directory (the
    /// `header` path pays for these two and nothing more). Refused: a
    /// symbolic link (SQLite would follow it, and the journal, the
    /// automatic backups and a mode change would land beside another
    /// file), a file that is not a regular file, a file owned by another
    /// user, or one in a directory owned by another user but root (who
    /// could replace it). Returns the file's mode bits.
    static func inspectVault(_ path: String) throws(StorageError) -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw .vaultNotFound(path: path) }
            throw .io(path: path, detail: "cannot inspect: \(errnoText())")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK: throw .unsafeVault(path: path, problem: .symbolicLink(target: linkTarget(path)))
        default: throw .notAVault(path: path)
        }
        let me = geteuid()
        if info.st_uid != me { throw .unsafeVault(path: path, problem: .ownedByOther(owner: describeUser(info.st_uid))) }
        try checkDirectoryOwner(of: path, me: me)
        return info.st_mode & 0o7777
    }

    /// Refuses a vault path whose directory belongs to another user than
    /// this one or root: one stat(2).
    static func checkDirectoryOwner(of path: String, me: uid_t = geteuid()) throws(StorageError) {
        let directory = parentDirectory(of: path)
        var parent = stat()
        if stat(directory, &parent) == 0, parent.st_uid != me, parent.st_uid != 0 {
            throw .unsafeVault(path: path, problem: .directoryOwnedByOther(directory: directory, owner: describeUser(parent.st_uid)))
        }
    }

    /// The mode of a file keyseal made itself (a temporary copy), which
    /// needs none of inspectVault's checks: it must exist and be a regular file.
    static func modeOfOwnFile(_ path: String) throws(StorageError) -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw .vaultNotFound(path: path) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notAVault(path: path) }
        return info.st_mode & 0o7777
    }

    /// What a symbolic link points to, as written in it.
    static func linkTarget(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(path, &buffer, buffer.count - 1)
        guard length > 0 else { return "?" }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "nobody (uid 65534)", or "uid 1234" when the name is unknown.
    static func describeUser(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "\(String(cString: name)) (uid \(uid))"
    }

    /// A vault found with a looser mode is set to 0600, because SQLite gives
    /// its journal the database file's mode. `mode` is what inspectVault
    /// saw; false when chmod failed.
    static func tightenFileMode(_ path: String, from mode: mode_t) -> Bool {
        mode & 0o077 == 0 || chmod(path, fileMode) == 0
    }

    /// True when both paths name one file (hard links, symlinks, ./ forms).
    static func sameFile(_ first: String, _ second: String) -> Bool {
        var a = stat(), b = stat()
        return stat(first, &a) == 0 && stat(second, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
