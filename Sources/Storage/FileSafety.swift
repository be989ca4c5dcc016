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

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
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

    /// A vault copied with a looser mode is tightened to 0600 on open, because
    /// SQLite gives its journal the database file's mode.
    static func tightenFileMode(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o077 != 0 else { return }
        _ = chmod(path, fileMode)
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
