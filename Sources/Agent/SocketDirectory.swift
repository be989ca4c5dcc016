#if canImport(Glibc)
import Glibc
#endif
import Sealing

/// The private directory the agent socket lives in: the socket's 0600 mode
/// is only advisory on some systems, so the directory is what keeps other
/// users away from it.
public enum SocketDirectory {
    static let mode: mode_t = 0o700

    /// Validates `path` (lstat: must be a real directory, not a symlink, owned by `uid`, no group/other permission bits), creating it with mode 0700 (and fixing the mode after mkdir, whatever the umask) when missing; its parent must exist. Returns the path.
    public static func prepare(_ path: String, uid: UInt32) throws(AgentError) -> String {
        let path = withoutTrailingSlashes(path)
        guard !path.isEmpty else { throw .unsafeSocketDirectory(path: path, reason: "the path is empty") }
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else {
                throw .unsafeSocketDirectory(path: path, reason: "cannot inspect it: \(UnixSocket.errnoText())")
            }
            try create(path)
            guard lstat(path, &info) == 0 else {
                throw .unsafeSocketDirectory(path: path, reason: "cannot inspect it: \(UnixSocket.errnoText())")
            }
        }
        try validate(path, info, uid: uid)
        return path
    }

    /// "<directory>/agent-<vault id hex>.sock"
    public static func socketPath(directory: String, vaultID: [UInt8]) -> String {
        "\(withoutTrailingSlashes(directory))/agent-\(Hex.encode(vaultID)).sock"
    }

    /// mkdir, then the mode fixed through a descriptor of the directory just
    /// made (O_NOFOLLOW: never through a symlink swapped in meanwhile).
    private static func create(_ path: String) throws(AgentError) {
        let parent = parentDirectory(of: path)
        var parentInfo = stat()
        guard stat(parent, &parentInfo) == 0, parentInfo.st_mode & S_IFMT == S_IFDIR else {
            throw .unsafeSocketDirectory(path: path, reason: "its parent directory \(parent) does not exist")
        }
        if mkdir(path, mode) != 0 {
            // Another process made it first: validate theirs like any other.
            guard errno == EEXIST else {
                throw .unsafeSocketDirectory(path: path, reason: "cannot create it: \(UnixSocket.errnoText())")
            }
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw .unsafeSocketDirectory(path: path, reason: "cannot open it after creating it: \(UnixSocket.errnoText())")
        }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else {
            throw .unsafeSocketDirectory(path: path, reason: "cannot set its mode to 0700: \(UnixSocket.errnoText())")
        }
    }

    private static func validate(_ path: String, _ info: stat, uid: UInt32) throws(AgentError) {
        switch info.st_mode & S_IFMT {
        case S_IFDIR: break
        case S_IFLNK: throw .unsafeSocketDirectory(path: path, reason: "it is a symbolic link")
        default: throw .unsafeSocketDirectory(path: path, reason: "it is not a directory")
        }
        guard info.st_uid == uid else {
            throw .unsafeSocketDirectory(path: path, reason: "it is owned by uid \(info.st_uid), not \(uid)")
        }
        let permissions = info.st_mode & 0o7777
        guard permissions & 0o077 == 0 else {
            throw .unsafeSocketDirectory(
                path: path, reason: "group or others have access (mode \(octal(permissions)), expected 0700)")
        }
    }

    /// lstat("link/") follows the link, so trailing slashes must go before any check.
    static func withoutTrailingSlashes(_ path: String) -> String {
        var path = Substring(path)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = path[..<slash]
        return parent.isEmpty ? "/" : String(parent)
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
