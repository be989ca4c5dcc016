import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Reads a pass(1) store: every `*.gpg` file under the store's directory
/// (not `.git`), decrypted by the user's own gpg, as pass does. The entry
/// name is the file's path in the store without `.gpg` (`work/github`); its
/// secret is the first line, pass's convention (later lines, such as
/// `login:` or `url:`, are left out). gpg's output is read into guarded
/// memory; it asks for the key's passphrase through gpg-agent as usual.
struct PassStoreReader {
    let directory: String
    let template: TransferEntry

    /// The store's files, relative to it, sorted: `work/github.gpg`, ...
    func files() throws -> [String] {
        var found: [String] = []
        func walk(_ relative: String) throws {
            let path = relative.isEmpty ? directory : "\(directory)/\(relative)"
            guard let handle = opendir(path) else {
                throw CLIError(.notFound, "cannot read the pass store \(path): \(String(cString: strerror(errno)))",
                               hint: "name the store's directory, or set PASSWORD_STORE_DIR")
            }
            defer { closedir(handle) }
            var children: [(String, Bool)] = []
            while let item = readdir(handle) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix(".") { continue }
                var info = stat()
                guard lstat("\(path)/\(name)", &info) == 0 else { continue }
                children.append((name, (info.st_mode & S_IFMT) == S_IFDIR))
            }
            for (name, isDirectory) in children.sorted(by: { $0.0 < $1.0 }) {
                let child = relative.isEmpty ? name : "\(relative)/\(name)"
                if isDirectory { try walk(child) } else if name.hasSuffix(".gpg") { found.append(child) }
            }
        }
        try walk("")
        return found
    }

    func read(progress: (Int, Int64) -> Void, into session: CheckedImport) throws {
        let gpg: String
        switch Launcher.find("gpg2") {
        case let .found(path): gpg = path
        default:
            guard case let .found(path) = Launcher.find("gpg") else {
                throw CLIError(.unavailable, "gpg is not installed, so the pass store cannot be decrypted", hint: "install gnupg")
            }
            gpg = path
        }
        let environment = Launcher.environment(droppingPrefix: "KEYSEAL_")
        let nothing = try SecretBytes(count: 0)
        for (index, file) in try files().enumerated() {
            let name = String(file.dropLast(4))
            let result = try ChildProcess.run(
                gpg, arguments: [gpg, "--quiet", "--yes", "--batch", "--use-agent", "--decrypt", "--", "\(directory)/\(file)"],
                environment: environment, input: nothing, maxOutput: Vault.maxSecretLength + 64 * 1024)
            guard result.status == 0 else {
                let detail = result.errorText.split(separator: "\n").last.map(String.init) ?? "status \(result.status)"
                throw CLIError(.failure, "gpg could not decrypt \(name) from the pass store: \(TextTable.printable(detail))",
                               hint: "check that gpg-agent can use your key (pass show \(name)); nothing was imported")
            }
            // The first line is the password.
            let length = result.output.withUnsafeBytes { bytes in bytes.firstIndex(of: 0x0A) ?? bytes.count }
            var lineEnd = length
            if lineEnd > 0, result.output.withUnsafeBytes({ $0[lineEnd - 1] }) == 0x0D { lineEnd -= 1 }
            guard lineEnd > 0 else {
                throw CLIError(.usage, "\(name) in the pass store has an empty first line", hint: "keyseal stores no empty secret; nothing was imported")
            }
            let secret = try result.output.prefix(lineEnd)
            var entry = template
            entry.name = name
            try session.add(entry, secret: secret)
            progress(index + 1, Int64(index + 1))
        }
    }
}
