import ArgumentParser
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Which vault: --vault, else $KEYSEAL_VAULT, else the XDG data directory.
struct VaultOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The vault file (default: $KEYSEAL_VAULT, else $XDG_DATA_HOME/keyseal/vault.db).",
        valueName: "path"))
    var vault: String?

    var location: VaultLocation { VaultLocation(vault: vault) }

    var path: String {
        get throws(CLIError) { try location.path }
    }

    func open() throws -> Vault {
        try location.open()
    }
}

/// The vault a command names, resolved. A plain value, so the `header` fast
/// path can build it without argument-parser (HeaderFastPath).
struct VaultLocation: Equatable {
    /// --vault, when given.
    var vault: String?

    var path: String {
        get throws(CLIError) {
            if let vault {
                guard !vault.isEmpty else { throw CLIError(.usage, "--vault needs a path", hint: "for example --vault ~/vaults/work.db") }
                return vault
            }
            if let fromEnvironment = Environment.value("KEYSEAL_VAULT"), !fromEnvironment.isEmpty { return fromEnvironment }
            if let dataHome = Environment.value("XDG_DATA_HOME"), dataHome.hasPrefix("/") {
                return "\(dataHome)/keyseal/vault.db"
            }
            guard let home = Environment.home else {
                throw CLIError(.usage, "cannot find the default vault: neither HOME nor XDG_DATA_HOME is set",
                               hint: "name the vault with --vault PATH or KEYSEAL_VAULT")
            }
            return "\(home)/.local/share/keyseal/vault.db"
        }
    }

    func open() throws -> Vault {
        let vault = try Vault.open(at: path)
        if let exposure = vault.modeExposure {
            // Said once: the next open finds 0600.
            let bits = exposure.mode & 0o077
            let how = bits & 0o044 != 0 ? "readable" : bits & 0o022 != 0 ? "writable" : "open"
            let mode = PassphraseSource.octal(mode_t(exposure.mode & 0o777))
            Output.warning(exposure.nowPrivate
                ? "the vault \(vault.path) was \(how) by other users (mode \(mode)); it is now 0600"
                : "the vault \(vault.path) is \(how) by other users (mode \(mode)) and could not be set to 0600; run: chmod 600 \(ShellQuote.quote(vault.path))")
        }
        if let saved = vault.automaticBackupPath {
            Output.info("upgraded \(vault.path) to vault format \(vault.formatVersion); the file as it was is kept at \(saved)")
        }
        return vault
    }
}

/// How to unlock without argv, in this order: a running agent; --passphrase-fd
/// or $KEYSEAL_PASSPHRASE_FILE; a key file ($KEYSEAL_KEYFILE); an askpass
/// program ($KEYSEAL_ASKPASS); a no-echo prompt on the terminal.
struct UnlockOptions: ParsableArguments {
    @Option(name: .customLong("passphrase-fd"), help: ArgumentHelp(
        "Read the passphrase from this open file descriptor, to its end; one final newline is removed.",
        valueName: "n"))
    var passphraseFD: Int32?

    @Flag(help: "Do not use a running unlock agent.")
    var noAgent = false

    var method: UnlockMethod { UnlockMethod(passphraseFD: passphraseFD, noAgent: noAgent) }

    func passphrase(prompt: String = "Passphrase: ") throws -> SecretBytes {
        try method.passphrase(prompt: prompt)
    }

    func unlock(_ vault: Vault, describedAs label: String? = nil) throws -> UnlockedVault {
        try method.unlock(vault, describedAs: label)
    }

    func unlockLocally(_ vault: Vault) throws -> UnlockedVault {
        try method.unlockLocally(vault)
    }
}

/// The unlock options, resolved: a plain value, like VaultLocation.
struct UnlockMethod: Equatable {
    var passphraseFD: Int32?
    var noAgent = false

    func passphrase(prompt: String = "Passphrase: ") throws -> SecretBytes {
        try PassphraseSource.resolve(fd: passphraseFD).read(prompt: prompt)
    }

    func unlock(_ vault: Vault, describedAs label: String? = nil) throws -> UnlockedVault {
        if !noAgent, let client = try AgentConnection.find(for: vault) {
            // The descriptor is not needed; it must not reach curl or run's command.
            if let passphraseFD { PassphraseSource.release(passphraseFD) }
            return vault.unlocked(by: client)
        }
        return try unlockLocally(vault, describedAs: label)
    }

    /// Unlocks in this process, never through the agent: for commands that
    /// need the vault key itself (unlock, passwd, key add).
    /// `label` names the vault in the prompt when its path would mislead
    /// (restore opens a private copy of the backup).
    func unlockLocally(_ vault: Vault, describedAs label: String? = nil) throws -> UnlockedVault {
        let source = PassphraseSource.resolve(fd: passphraseFD)
        if !source.isExplicit, let keyFile = Environment.value("KEYSEAL_KEYFILE"), !keyFile.isEmpty {
            return try vault.unlock(keyFile: KeyFile.read(keyFile))
        }
        let passphrase = try source.read(prompt: "Passphrase for \(label ?? vault.path): ")
        // An empty passphrase never unlocks (init refuses one): reported as
        // an unlock failure without running the KDF.
        if passphrase.count == 0 {
            throw CLIError(.unlock, "the passphrase is empty", hint: "a vault passphrase is never empty")
        }
        return try vault.unlock(passphrase: passphrase)
    }
}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }

    static var home: String? {
        if let home = value("HOME"), !home.isEmpty { return home }
        guard let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }
}

enum FileSystem {
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func sameFile(_ first: String, _ second: String) -> Bool {
        var a = stat(), b = stat()
        return stat(first, &a) == 0 && stat(second, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }
}
