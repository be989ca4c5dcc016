import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// A file written under a private temporary name (O_EXCL, mode 0600 under
/// any umask) beside its destination, synced, then published with link(2),
/// which never replaces an existing file: a crash leaves no partial file
/// under the real name.
struct PrivateFile {
    let destination: String
    let staging: String
    let fd: Int32

    init(publishingAs destination: String) throws {
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        staging = "\(directory.isEmpty ? "/" : directory)/.\(base).\(Hex.encode(try Random.bytes(6))).tmp"
        fd = open(staging, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CLIError(.failure, "cannot create a file beside \(destination): \(String(cString: strerror(errno)))",
                           hint: "check that the directory exists and is writable")
        }
        guard fchmod(fd, 0o600) == 0 else {
            close(fd)
            unlink(staging)
            throw CLIError(.failure, "cannot make \(staging) private: \(String(cString: strerror(errno)))")
        }
    }

    /// Syncs and publishes; the file must not exist by then.
    func publish() throws {
        defer { unlink(staging) }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            throw CLIError(.failure, "cannot write \(destination): \(String(cString: strerror(code)))",
                           hint: code == ENOSPC || code == EDQUOT ? "nothing was published; free some space" : "nothing was published; check the disk (dmesg)")
        }
        close(fd)
        guard link(staging, destination) == 0 else {
            if errno == EEXIST { throw CLIError(.exists, "\(destination) appeared meanwhile; keyseal never overwrites it", hint: "choose a new path") }
            throw CLIError(.failure, "cannot publish \(destination): \(String(cString: strerror(errno)))")
        }
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        let dirFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    /// Removes the unfinished file.
    func discard() {
        close(fd)
        unlink(staging)
    }
}
