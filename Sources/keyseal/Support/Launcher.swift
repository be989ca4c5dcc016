import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Replaces keyseal with another program (curl, or the command of `run`).
/// exec rather than spawn: the child's exit status is the status, its signals
/// are its own, and no keyseal process lingers holding a secret.
enum Launcher {
    enum Lookup: Equatable {
        case found(String)
        /// A file of that name exists but cannot be executed (env(1): 126).
        case notExecutable(String)
        case notFound
    }

    /// The first executable `name` on PATH, as execvp(3) would find it.
    static func find(_ name: String) -> Lookup {
        func check(_ candidate: String) -> Lookup {
            var info = stat()
            guard stat(candidate, &info) == 0 else { return .notFound }
            // A directory or a file without x: there, but not runnable.
            guard (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 else { return .notExecutable(candidate) }
            return .found(candidate)
        }
        if name.contains("/") { return check(name) }
        let path = Environment.value("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        var result = Lookup.notFound
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            switch check((directory.isEmpty ? "." : String(directory)) + "/" + name) {
            case let .found(candidate): return .found(candidate)
            case let .notExecutable(candidate) where result == .notFound: result = .notExecutable(candidate)
            default: continue
            }
        }
        return result
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
