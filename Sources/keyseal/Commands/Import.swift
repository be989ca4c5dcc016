import ArgumentParser
import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

enum ImportFormat: String, ExpressibleByArgument, CaseIterable {
    /// A keyseal export (sealed or JSON) when the file starts like one, else dotenv.
    case auto
    case keyseal
    case dotenv
    case pass
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add entries from a keyseal export, a dotenv file or a pass store (a dry run unless --apply).",
        discussion: """
            Without --apply, lists what would be added and every conflict, and \
            writes nothing (exit 73 if there are conflicts). With --apply, \
            every entry is written in one transaction, or none: a conflict \
            (a name that exists, or comes twice) refuses the whole import \
            unless --replace, which replaces the existing entries after an \
            automatic backup. Sources: a sealed export (its passphrase from the \
            terminal or --export-passphrase-fd) or a JSON one from keyseal \
            export, with metadata and previous values; a dotenv file \
            (NAME=value lines); a pass store (--from pass [DIR], default \
            $PASSWORD_STORE_DIR or ~/.password-store), decrypted with your \
            gpg, the first line of each file as the secret. Entries from \
            dotenv and pass get --kind (default api-key) and the kind's \
            header, or --header. Progress is shown on a terminal.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: ArgumentHelp("The file to import (for --from pass, the store's directory).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("What the file is: auto, keyseal, dotenv or pass.", valueName: "format"))
    var from: ImportFormat = .auto

    @Flag(help: "Write the entries; without it, nothing is written.")
    var apply = false

    @Flag(help: "Replace entries that exist already (an automatic backup is taken first).")
    var replace = false

    @Option(help: ArgumentHelp("Put this before every imported name, for example \"prod/\".", valueName: "text"))
    var prefix = ""

    @Option(help: ArgumentHelp("Kind of the entries from dotenv or pass: api-key, pat or token.", valueName: "kind"))
    var kind: String = CredentialKind.apiKey.rawValue

    @Option(help: ArgumentHelp("Header template of the entries from dotenv or pass (default: the kind's).", valueName: "template"))
    var header: String?

    @Option(name: .customLong("export-passphrase-fd"), help: ArgumentHelp("Read a sealed export's passphrase from this descriptor.", valueName: "n"))
    var exportPassphraseFD: Int32?

    func run() throws {
        try Failure.report {
            if let exportPassphraseFD, exportPassphraseFD == unlockOptions.passphraseFD {
                throw CLIError(.usage, "the vault's and the export's passphrase need two descriptors")
            }
            let vault = try vaultOptions.open()
            var input = try ImportInput.open(file: file, format: from, template: try template())
            defer { input.close() }
            // A sealed export's passphrase is asked once, before the vault's.
            let exportPassphrase = input.isSealed ? try Self.exportPassphrase(fd: exportPassphraseFD) : nil
            var progress = ImportProgress(total: input.total, unit: input.progressUnit)
            let summary: ImportSummary
            if apply {
                let unlocked = try unlockOptions.unlock(vault)
                if replace, try !vault.entries().isEmpty {
                    let saved = try vault.automaticBackup(reason: "before-import")
                    Output.info("the vault as it was is kept at \(saved)")
                }
                summary = try unlocked.importEntries(replace: replace) { session in
                    try input.read(into: CheckedImport(session, prefix: prefix), passphrase: exportPassphrase) { progress.update(entries: $0, position: $1) }
                }
            } else {
                summary = try vault.checkImport(replace: replace) { session in
                    try input.read(into: CheckedImport(session, prefix: prefix), passphrase: exportPassphrase) { progress.update(entries: $0, position: $1) }
                }
            }
            progress.finish()
            try report(summary, source: input.label)
        }
    }

    private func template() throws -> TransferEntry {
        guard let known = CredentialKind(rawValue: kind), CredentialKind.storable.contains(known), known != .bearer else {
            throw CLIError(.usage, "unknown kind \(kind.debugDescription) for imported entries", hint: "use api-key, pat or token")
        }
        let now = Vault.currentTime()
        let template = try header.map(FieldInput.headerTemplate) ?? known.defaultHeaderTemplate
        return TransferEntry(
            name: "", fields: EntryFields(kind: known.rawValue, headerTemplate: template, description: ""),
            createdAt: now, updatedAt: now)
    }

    private func report(_ summary: ImportSummary, source: String) throws {
        if !apply {
            for name in summary.added { try Output.data("add \(TextTable.printable(name))\n") }
            for name in summary.replaced { try Output.data("replace \(TextTable.printable(name))\n") }
            for name in summary.conflicts { try Output.data("conflict \(TextTable.printable(name))\n") }
        }
        let previous = VerifySummary.plural(summary.previousValues, "previous value", "previous values")
        if apply {
            Output.info("imported from \(source): \(summary.added.count) added, \(summary.replaced.count) replaced, \(previous); every entry read back and verified")
            return
        }
        if !summary.conflicts.isEmpty {
            let count = summary.conflicts.count
            Output.error("dry run: \(count) conflicting \(count == 1 ? "name" : "names") (in the vault already, or twice in the source); nothing was written",
                         hint: "add --replace to replace them, or rename them in the source; then run again with --apply")
            throw ExitCode(ExitStatus.exists.rawValue)
        }
        Output.info("dry run: \(source) would add \(summary.added.count) and replace \(summary.replaced.count) entries (\(previous)); nothing was written, add --apply to import")
    }

    static func exportPassphrase(fd: Int32?) throws -> SecretBytes {
        let source: PassphraseSource = fd.map(PassphraseSource.fileDescriptor) ?? .terminal
        let passphrase = try source.read(prompt: "Passphrase of the export: ")
        if passphrase.count == 0 { throw CLIError(.usage, "the export passphrase is empty") }
        return passphrase
    }
}

/// The source of an import, opened: a file (export or dotenv) or a pass store.
struct ImportInput: ~Copyable {
    enum Kind {
        case sealedExport(ExportReader.SealedHeader)
        case jsonExport
        case dotenv(DotenvReader)
        case pass(PassStoreReader)
    }

    let kind: Kind
    let label: String
    private var source: GuardedByteSource?
    private let fd: Int32
    /// Bytes of the file (or files of the store), for progress.
    let total: Int64

    var isSealed: Bool {
        if case .sealedExport = kind { return true }
        return false
    }

    var progressUnit: ImportProgress.Unit {
        if case .pass = kind { return .items }
        return .bytes
    }

    static func open(file: String?, format: ImportFormat, template: TransferEntry) throws -> ImportInput {
        if format == .pass {
            let directory = file ?? Environment.value("PASSWORD_STORE_DIR").flatMap { $0.isEmpty ? nil : $0 }
                ?? (Environment.home.map { "\($0)/.password-store" } ?? ".password-store")
            let reader = PassStoreReader(directory: directory, template: template)
            let count = try reader.files().count
            return ImportInput(kind: .pass(reader), label: "the pass store \(directory)", source: nil, fd: -1, total: Int64(count))
        }
        guard let file else { throw CLIError(.usage, "name the file to import", hint: "keyseal import FILE, or --from pass for a pass store") }
        let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let status: ExitStatus = errno == ENOENT ? .notFound : .failure
            throw CLIError(status, "cannot read \(file): \(String(cString: strerror(errno)))", hint: "check the path")
        }
        var info = stat()
        fstat(fd, &info)
        do {
            var source = try GuardedByteSource(fd: fd)
            let kind: Kind
            switch format {
            case .dotenv:
                kind = .dotenv(DotenvReader(file: file, template: template))
            case .keyseal, .auto:
                let scanner = JSONStreamScanner(file: file)
                scanner.skipSpace(&source)
                let first = try source.peek()
                if first == UInt8(ascii: "k") {
                    kind = .sealedExport(try ExportReader.readSealedHeader(&source, file: file))
                } else if first == UInt8(ascii: "{") {
                    kind = .jsonExport
                } else if format == .keyseal {
                    throw ExportReader.malformed(file, "it is neither a sealed export nor JSON")
                } else {
                    kind = .dotenv(DotenvReader(file: file, template: template))
                }
            case .pass:
                preconditionFailure("handled above")
            }
            return ImportInput(kind: kind, label: file, source: source, fd: fd, total: Int64(info.st_size))
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    private init(kind: Kind, label: String, source: consuming GuardedByteSource?, fd: Int32, total: Int64) {
        self.kind = kind
        self.label = label
        self.source = source
        self.fd = fd
        self.total = total
    }

    mutating func read(into session: CheckedImport, passphrase: borrowing SecretBytes?, progress: (Int, Int64) -> Void) throws {
        switch kind {
        case let .pass(reader):
            try reader.read(progress: progress, into: session)
        case let .dotenv(reader):
            guard var input = source.take() else { return }
            try reader.read(&input, progress: progress, into: session)
        case .jsonExport:
            guard var input = source.take() else { return }
            try ExportReader.readPlaintext(&input, file: label, progress: progress, into: session)
        case let .sealedExport(header):
            guard var input = source.take() else { return }
            switch passphrase {
            case .some(let secret):
                try ExportReader.readSealed(&input, header: header, passphrase: secret, file: label, progress: progress, into: session)
            case .none:
                throw CLIError(.usage, "\(label) is sealed and no passphrase was given")
            }
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
    }
}

/// Progress on a terminal (stderr): count, rate and time left, redrawn at
/// most five times a second; silent when stderr is not a terminal.
struct ImportProgress {
    enum Unit { case bytes, items }

    let total: Int64
    let unit: Unit
    private let enabled = Output.isTerminal(2)
    private let started = ImportProgress.now()
    private var lastDrawn = 0.0
    private var drawn = false

    init(total: Int64, unit: Unit) {
        self.total = total
        self.unit = unit
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    mutating func update(entries: Int, position: Int64) {
        guard enabled else { return }
        let now = Self.now()
        guard now - lastDrawn >= 0.2 else { return }
        lastDrawn = now
        let elapsed = max(now - started, 0.001)
        let rate = Double(entries) / elapsed
        let fraction = total > 0 ? min(1, Double(position) / Double(total)) : 0
        let left = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
        Output.write(2, "\rkeyseal: \(entries) entries read, \(Int(rate))/s, about \(Int(left.rounded(.up))) s left   ")
        drawn = true
    }

    func finish() {
        if drawn { Output.write(2, "\n") }
    }
}
