import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Replaces keyseal with another program (curl, or the command of `run`).
/// exec rather than spawn: the child's exit status is the status, its signals
/// are its own, and no keyseal process lingers holding a secret.
enum Launcher {
    /// The first executable `name` on PATH, as execvp(3) would find it.
    static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = Environment.value("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// The current environment, less the variables `dropping` names and
    /// those starting with `droppingPrefix`.
    static func environment(droppingPrefix prefix: String? = nil, dropping names: Set<String> = []) -> [String] {
        var result: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            let name = String(text.prefix(while: { $0 != "=" }))
            if !(prefix.map(name.hasPrefix) ?? false) && !names.contains(name) { result.append(text) }
            entry += 1
        }
        return result
    }

    /// execve(2) with `arguments` (argv[0] included) and an environment made
    /// of `environment` plus `secretEnvironment`, a guarded buffer of
    /// NUL-terminated "NAME=value" strings. Returns only on failure.
    static func exec(
        _ path: String, arguments: [String], environment: [String], secretEnvironment: borrowing SecretBytes
    ) -> Int32 {
        var argv = arguments.map { strdup($0) }
        argv.append(nil)
        var envp = environment.map { strdup($0) }
        secretEnvironment.withUnsafeBytes { bytes in
            var start = 0
            for index in 0..<bytes.count where bytes[index] == 0 {
                // Pointers into guarded memory: the strings are never copied.
                envp.append(UnsafeMutablePointer(mutating: bytes.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self)))
                start = index + 1
            }
            envp.append(nil)
            execve(path, argv, envp)
        }
        return errno
    }
}
