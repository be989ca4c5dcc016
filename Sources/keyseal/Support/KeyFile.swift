import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Key files: 32 random bytes, mode 0600, created once and never overwritten.
enum KeyFile {
    /// Reads a key file into guarded memory, refusing one that other users
    /// could read and one of the wrong size.
    static func read(_ path: String) throws -> SecretBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CLIError(.unlock, "cannot read the key file \(path): \(String(cString: strerror(errno)))",
                           hint: "check KEYSEAL_KEYFILE")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CLIError(.unlock, "the key file \(path) is not a regular file")
        }
        if info.st_mode & 0o077 != 0 {
            throw CLIError(.unlock, "the key file \(path) is open to other users (mode \(PassphraseSource.octal(info.st_mode & 0o777)))",
                           hint: "run: chmod 600 \(ShellQuote.quote(path))")
        }
        let key = try SecretReader.readExactly(fd: fd, limit: Vault.keyFileLength, what: "key file")
        guard key.count == Vault.keyFileLength else {
            throw CLIError(.unlock, "\(path) is not a keyseal key file (\(Vault.keyFileLength) bytes)")
        }
        return key
    }

    /// Writes `key` to a new file: O_EXCL, so an existing file is never
    /// overwritten; mode 0600 whatever the umask; synced before returning.
    static func create(_ path: String, key: borrowing SecretBytes) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw CLIError(.exists, "\(path) already exists; keyseal never overwrites a key file",
                               hint: "choose a new path")
            }
            throw CLIError(.failure, "cannot create the key file \(path): \(String(cString: strerror(errno)))")
        }
        var done = false
        defer {
            close(fd)
            if !done { unlink(path) }
        }
        guard fchmod(fd, 0o600) == 0 else {
            throw CLIError(.failure, "cannot set the key file's mode: \(String(cString: strerror(errno)))")
        }
        // A failed write is the key file's, not "output"'s.
        var failure: Int32 = key.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return 0
        }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        if failure != 0 {
            throw CLIError(.failure, "cannot write the key file \(path): \(String(cString: strerror(failure)))",
                           hint: failure == ENOSPC || failure == EDQUOT ? "free some space; nothing was changed" : "check the disk (dmesg); nothing was changed")
        }
        done = true
        // The name is durable before a slot that needs the file is added.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let directoryFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

extension SecretReader {
    /// Up to `limit` bytes; one more is read to tell a longer file apart.
    static func readExactly(fd: Int32, limit: Int, what: String) throws -> SecretBytes {
        var buffer = try SecretBytes(count: limit + 1)
        var length = 0
        try buffer.withUnsafeMutableBytes { bytes in
            while length < bytes.count {
                let got = Glibc.read(fd, bytes.baseAddress! + length, bytes.count - length)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw CLIError(.failure, "cannot read the \(what): \(String(cString: strerror(errno)))")
                }
                if got == 0 { break }
                length += got
            }
        }
        return try buffer.prefix(length)
    }
}

/// KEYSEAL_ASKPASS: a program whose standard output is the passphrase, as
/// SSH_ASKPASS. It gets the prompt as its one argument and no secret.
enum Askpass {
    static func run(_ program: String, prompt: String) throws -> SecretBytes {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw CLIError(.failure, "cannot make a pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(program), strdup(prompt), nil]
        let environment = Launcher.environment(dropping: ["KEYSEAL_PASSPHRASE_FILE", "KEYSEAL_KEYFILE"])
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) }
        envp.append(nil)
        let status = program.contains("/")
            ? posix_spawn(&pid, program, &actions, nil, argv, envp)
            : posix_spawnp(&pid, program, &actions, nil, argv, envp)
        close(writeEnd)
        defer { close(readEnd) }
        guard status == 0 else {
            throw CLIError(.unlock, "cannot run KEYSEAL_ASKPASS \(program): \(String(cString: strerror(status)))")
        }
        let passphrase = try SecretReader.readToEnd(fd: readEnd, limit: PassphraseSource.maxLength, what: "passphrase")
        var exit: Int32 = 0
        while waitpid(pid, &exit, 0) < 0 && errno == EINTR {}
        guard exit == 0 else {
            throw CLIError(.unlock, "KEYSEAL_ASKPASS \(program) did not give a passphrase (it failed or was cancelled)")
        }
        return passphrase
    }
}
