import ArgumentParser
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every entry, with its metadata and previous values, to a file another keyseal can import.",
        discussion: """
            The export is sealed with its own passphrase (Argon2id, then \
            XChaCha20-Poly1305 in libsodium's secretstream; docs/FORMAT.md): \
            asked twice on the terminal, or read from --export-passphrase-fd. \
            It is read back and every entry opened before it is published \
            under FILE, which must not exist (mode 0600). --plaintext writes \
            JSON with every secret in the clear instead, and says so. Kept \
            bearer tokens are not exported; the key gets new ones.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("The file to write; it must not exist.", valueName: "file"))
    var destination: String

    @Flag(help: "Write JSON with the secrets in the clear (for another tool); keyseal warns.")
    var plaintext = false

    @Option(name: .customLong("export-passphrase-fd"), help: ArgumentHelp("Read the export's passphrase from this descriptor.", valueName: "n"))
    var exportPassphraseFD: Int32?

    @Option(help: ArgumentHelp("Argon2id cost for the export: interactive, moderate or sensitive.", valueName: "preset"))
    var kdf: KDFPreset = .moderate

    func run() throws {
        try Failure.report {
            if FileSystem.exists(destination) {
                throw CLIError(.exists, "\(destination) already exists; keyseal never overwrites it", hint: "choose a new path")
            }
            if plaintext && exportPassphraseFD != nil {
                throw CLIError(.usage, "--plaintext writes no passphrase-sealed file", hint: "drop --export-passphrase-fd, or --plaintext")
            }
            if let exportPassphraseFD, exportPassphraseFD == unlockOptions.passphraseFD {
                throw CLIError(.usage, "the vault's and the export's passphrase need two descriptors")
            }
            let parameters = try kdf.parameters()
            let vault = try vaultOptions.open()
            let unlocked = try unlockOptions.unlock(vault)
            let count = try vault.entries().count
            let passphrase = plaintext ? nil : try Self.newPassphrase(fd: exportPassphraseFD)
            let file = try PrivateFile(publishingAs: destination)
            var previousValues = 0
            do {
                var writer: ExportWriter
                switch passphrase {
                case .some(let secret):
                    writer = try ExportWriter(sealedTo: file.fd, passphrase: secret, kdf: parameters, exportedAt: Vault.currentTime(), entries: count)
                case .none:
                    writer = try ExportWriter(plaintextTo: file.fd, exportedAt: Vault.currentTime(), entries: count)
                }
                try unlocked.exportEntries(
                    entry: { entry, secret in try writer.entry(entry, secret: secret) },
                    previous: { value, secret in
                        previousValues += 1
                        try writer.previous(value, secret: secret)
                    })
                try writer.finish()
                // Read back before publishing: every entry must open again.
                let checked = try Self.readBack(file.staging, passphrase: passphrase, into: vault)
                guard checked == count else {
                    throw CLIError(.failure, "the export read back \(checked) entries of \(count)", hint: "nothing was published; try again")
                }
                try file.publish()
            } catch {
                file.discard()
                throw error
            }
            let counts = "\(VerifySummary.plural(count, "entry", "entries")) and \(VerifySummary.plural(previousValues, "previous value", "previous values"))"
            if plaintext {
                Output.warning("\(destination) holds every secret in the clear (mode 0600); delete it once it has been imported")
                Output.info("exported \(counts) to \(destination), unsealed")
            } else {
                Output.info("exported \(counts) to \(destination), sealed with its passphrase (Argon2id \(kdf.rawValue)); every entry read back")
            }
        }
    }

    static func newPassphrase(fd: Int32?) throws -> SecretBytes {
        let source: PassphraseSource = fd.map(PassphraseSource.fileDescriptor) ?? .terminal
        if fd == nil, open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC).closing() < 0 {
            throw CLIError(.usage, "no terminal to ask for the export's passphrase", hint: "give it with --export-passphrase-fd N")
        }
        return try source.readNew(prompt: "Passphrase for the export: ", repeatPrompt: "Repeat the export passphrase: ", command: "export")
    }

    /// Reads the unpublished export back through the importer's own reader,
    /// checking every entry as an import would (nothing is written).
    static func readBack(_ path: String, passphrase: borrowing SecretBytes?, into vault: Vault) throws -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError(.failure, "cannot read back \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var source = try GuardedByteSource(fd: fd)
        var count = 0
        let summary = try vault.checkImport(replace: true) { storage in
            let session = CheckedImport(storage, prefix: "")
            switch passphrase {
            case .some(let secret):
                let header = try ExportReader.readSealedHeader(&source, file: path)
                try ExportReader.readSealed(&source, header: header, passphrase: secret, file: path, progress: { index, _ in count = index }, into: session)
            case .none:
                try ExportReader.readPlaintext(&source, file: path, progress: { index, _ in count = index }, into: session)
            }
        }
        return summary.conflicts.isEmpty ? count : -1
    }
}

private extension Int32 {
    /// For a probe: closes the descriptor if one was opened, and returns it.
    func closing() -> Int32 {
        if self >= 0 { close(self) }
        return self
    }
}
