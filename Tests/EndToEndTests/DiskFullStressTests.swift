// Disk full and I/O errors (issue 8): every write that add, rotate, passwd,
// backup, restore, import, key add and export make to the files under the vault's
// directory is made to fail, one at a time, with ENOSPC and with EIO, by
// an LD_PRELOAD library (Support/failing_io.c) that interposes write,
// pwrite, pwrite64, writev, fsync, fdatasync and ftruncate and fails the
// Nth of those calls on a regular file under the directory. For each
// command N runs 1, 2, 3, ... until a run completes without reaching the
// failure: every write point has then been hit once.
//
// After each failed run: a non-zero exit (not a signal), one clear error
// ("no space left" for ENOSPC, "I/O error" for EIO), no stack trace, no
// secret in the output, no temporary file left; and the vault as before,
// read by a fresh keyseal: the same entries with the same fingerprints,
// SQLite's integrity_check (python3's sqlite3) "ok", and every value opens
// (`keyseal verify`). Every write point comes before the commit point (the
// rollback journal's unlink, which is not a write), so a failed add or
// import never leaves its entries: they are absent, always. A sticky fault
// (every write failing from the Nth on, as on a disk that stays full) can
// leave a hot journal, which SQLite must keep: the next open rolls it back,
// and the check above runs through that open. passwd keeps the old
// passphrase; a backup target is absent, or the older backup it was to
// replace, unchanged; an automatic backup that was published is a whole,
// verified copy and its path is printed; a restore leaves the vault as it
// was, never half the backup.
//
// Plus a file size limit (RLIMIT_FSIZE, as `ulimit -f`): keyseal reports it
// rather than dying of SIGXFSZ.
//
// scripts/test runs two sweeps of every command (ENOSPC failing once, EIO
// failing from the Nth write on); `scripts/stress diskfull SECONDS` cycles
// through six faults (once, sticky, and short: a write that stops half-way
// and then fails, for both errnos) on vaults that grow each cycle.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("disk full and I/O errors at every write point")
struct DiskFullStressTests {
    /// The commands swept, each from the same baseline vault.
    enum Command: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case add, rotate, passwd, backup
        case backupOverOlder = "backup over an older backup"
        case restore
        case importDotenv = "import"
        case importReplace = "import --replace"
        case keyAdd = "key add"
        case export
        case exportPlaintext = "export --plaintext"

        var testDescription: String { rawValue }
    }

    /// How the Nth counted call fails.
    struct Fault: CustomStringConvertible, Sendable {
        let code: Int32
        /// once, sticky or short (see failing_io.c).
        let mode: String

        var description: String { "\(code == ENOSPC ? "ENOSPC" : "EIO") \(mode)" }

        /// The two of scripts/test first; scripts/stress cycles through all.
        static let all = [
            Fault(code: ENOSPC, mode: "once"), Fault(code: EIO, mode: "sticky"),
            Fault(code: EIO, mode: "once"), Fault(code: ENOSPC, mode: "sticky"),
            Fault(code: ENOSPC, mode: "short"), Fault(code: EIO, mode: "short"),
        ]
    }

    // MARK: The sweep

    @Test("every write point fails cleanly, with ENOSPC and with EIO", arguments: Command.allCases)
    func sweep(_ command: Command) async throws {
        let sandbox = try Sandbox()
        let library = try FailingIO.build(in: sandbox.root)
        var tally = Tally()
        let rounds = try await StressBudget.repeatRounds(bounded: 2) { round in
            let fault = Fault.all[round % Fault.all.count]
            // Longer runs also grow the vault, which moves the write points.
            let baseline = try await Baseline.make(sandbox, label: "round\(round)", extraEntries: round / Fault.all.count * 12,
                                                   tag: "df\(Command.allCases.firstIndex(of: command) ?? 0)-\(round)")
            var index = 1
            while true {
                let triggered = try await runOnce(command, failing: index, with: fault, baseline: baseline,
                                                  sandbox: sandbox, library: library, tally: &tally)
                if !triggered { break }
                index += 1
                try #require(index < 400, "no end to the write points of \(command.rawValue)")
            }
            tally.points.append("\(fault): \(index - 1)")
        }
        #expect(tally.failed > 0, "no write point was found: the library did not take effect")
        print("""
            DiskFullStressTests \(command.rawValue): \(rounds) rounds; write points per round: \(tally.points.joined(separator: ", ")); \
            \(tally.failed + tally.completed) runs: \(tally.failed) failed cleanly (vault unchanged and intact, every value opened), \
            \(tally.completed) completed; \(tally.hotJournals) hot journals left by a sticky fault, each rolled back by the next open; \
            errors seen: \(tally.messages.sorted().joined(separator: " | "))
            """)
    }

    /// One run of `command` with the `index`th write failing; false when the
    /// run ended before reaching it (then it must have succeeded).
    func runOnce(
        _ command: Command, failing index: Int, with fault: Fault, baseline: Baseline,
        sandbox: Sandbox, library: String, tally: inout Tally
    ) async throws -> Bool {
        let directory = sandbox.work + "/run"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        #expect(chmod(directory, 0o700) == 0)
        let vault = directory + "/vault.db"
        try sandbox.write(baseline.vaultBytes, to: vault)
        let target = directory + "/copy.db"
        if command == .backupOverOlder { try sandbox.write(baseline.olderBackup, to: target) }
        let report = sandbox.root + "/failio.report"
        try? FileManager.default.removeItem(atPath: report)
        let environment: [String: String?] = [
            "LD_PRELOAD": library, "FAILIO_DIR": directory, "FAILIO_AT": "\(index)",
            "FAILIO_ERRNO": "\(fault.code)", "FAILIO_MODE": fault.mode, "FAILIO_REPORT": report,
        ]

        let result: RunResult
        switch command {
        case .add:
            result = try await sandbox.run(["add", "new", "--vault", vault], stdin: baseline.newSecret + "\n", env: environment)
        case .rotate:
            result = try await sandbox.run(["rotate", "alpha", "--vault", vault], stdin: baseline.newSecret + "\n", env: environment)
        case .passwd:
            result = try await sandbox.shell("exec \"$0\" \"$@\" 3<\"\(baseline.newPassphraseFile)\"",
                                             ["passwd", "--vault", vault, "--new-passphrase-fd", "3", "--kdf", "insecure-testing"], env: environment)
        case .backup, .backupOverOlder:
            result = try await sandbox.run(["backup", "--vault", vault, target], env: environment)
        case .restore:
            result = try await sandbox.run(["restore", baseline.olderBackupPath, "--vault", vault], env: environment)
        case .importDotenv:
            result = try await sandbox.run(["import", "--vault", vault, "--apply", "--from", "dotenv", baseline.newEntries], env: environment)
        case .importReplace:
            result = try await sandbox.run(["import", "--vault", vault, "--apply", "--replace", "--from", "dotenv", baseline.replacingEntries], env: environment)
        case .keyAdd:
            result = try await sandbox.run(["key", "add", "--vault", vault, "--keyfile", directory + "/vault.key"], env: environment)
        case .export:
            result = try await sandbox.shell("exec \"$0\" \"$@\" 3<\"\(baseline.newPassphraseFile)\"",
                                             ["export", "--vault", vault, "--to", directory + "/out.kse", "--export-passphrase-fd", "3", "--kdf", "insecure-testing"],
                                             env: environment)
        case .exportPlaintext:
            result = try await sandbox.run(["export", "--vault", vault, "--to", directory + "/out.json", "--plaintext"], env: environment)
        }
        // No report: the run made no counted call at all.
        let counted = FailingIO.Report(path: report) ?? FailingIO.Report(calls: 0, failed: 0, op: "-", path: "-")
        let label = "\(command.rawValue), \(fault), write \(index) (\(counted.op) of \(counted.path.replacingOccurrences(of: directory + "/", with: "")))"

        // Whatever happened: no trace, no secret, no temporary file.
        for marker in ["Fatal error", "Stack dump", "Backtrace", "Current stack trace", "Segmentation"] {
            #expect(!result.err.contains(marker), "\(label): \(result)")
        }
        for secret in baseline.secrets {
            for form in Sentinel.forms(of: secret) {
                #expect(!result.stderr.contains(form) && !result.stdout.contains(form), "\(label): the output holds a secret")
            }
        }
        let left = try Self.files(under: directory)
        let temporary = left.filter { path in
            path.split(separator: "/").last.map { $0.hasPrefix(".") || $0.hasSuffix(".tmp") || $0.hasSuffix(".restore") } ?? false
        }
        #expect(temporary.isEmpty, "\(label): temporary files left: \(temporary)")

        guard counted.failed > 0 else {
            // The run is past the last write point: it must have succeeded.
            try #require(result.status == 0, "\(label): the run that met no fault failed: \(result)")
            try await expectCompleted(command, in: directory, baseline: baseline, sandbox: sandbox, result: result)
            tally.completed += 1
            return false
        }
        tally.failed += 1

        #expect(result.status != 0 && result.status < 128, "\(label): \(result)")
        #expect(result.err.contains("keyseal: error: "), "\(label): \(result)")
        let wording = fault.code == ENOSPC ? ["no space left"] : ["I/O error", "Input/output error"]
        #expect(wording.contains { result.err.localizedCaseInsensitiveContains($0) }, "\(label): the error does not say \(wording[0]): \(result)")
        if let line = result.err.split(separator: "\n").first(where: { $0.hasPrefix("keyseal: error: ") }) {
            tally.messages.insert(Self.normalized(String(line), directory: directory))
        }
        // Only the vault's own journal may stay, and only when the fault
        // stayed too (SQLite could not roll back): it must be kept.
        let journals = left.filter { $0.hasSuffix("-journal") }
        #expect(journals.isEmpty || (journals == [vault + "-journal"] && fault.mode != "once"), "\(label): journals left: \(journals)")
        if !journals.isEmpty { tally.hotJournals += 1 }

        // The vault, read again with no fault: as it was.
        let entries = try await Baseline.entries(sandbox, vault)
        #expect(entries == baseline.entries, "\(label): the entries changed:\n\(entries)\nwas\n\(baseline.entries)")
        #expect(!FileManager.default.fileExists(atPath: vault + "-journal"), "\(label): the next open left the journal")
        try Baseline.integrityCheck(sandbox, vault)
        let verified = try await sandbox.run(["verify", "--vault", vault])
        #expect(verified.status == 0 && Baseline.summary(verified) == baseline.verifySummary, "\(label): \(verified)")
        if [.passwd, .keyAdd, .restore].contains(command) {
            // Only these change key slots; list and verify above cover the rest.
            let slots = try await sandbox.run(["key", "list", "--json", "--vault", vault])
            #expect(slots.out == baseline.keySlots, "\(label): the key slots changed: \(slots.out)")
        }

        switch command {
        case .passwd, .importReplace, .restore:
            // A published automatic backup is whole, and its path was printed.
            for copy in left where copy.hasSuffix(".db") && copy.contains("/vault.db.backups/") {
                #expect(result.err.contains(copy.replacingOccurrences(of: sandbox.work + "/", with: "")) || result.err.contains(copy),
                        "\(label): \(copy) was kept without a word: \(result)")
                #expect(try await Baseline.entries(sandbox, copy) == baseline.entries, "\(label): \(copy) is not the vault as it was")
                try Baseline.integrityCheck(sandbox, copy)
            }
        case .backup:
            #expect(!FileManager.default.fileExists(atPath: target), "\(label): a backup was published")
        case .backupOverOlder:
            #expect(sandbox.bytes(target) == baseline.olderBackup, "\(label): the older backup was changed")
        case .keyAdd:
            #expect(!FileManager.default.fileExists(atPath: directory + "/vault.key"), "\(label): a key file that opens nothing was left")
        case .export, .exportPlaintext:
            #expect(!left.contains { $0.hasPrefix(directory + "/out.") }, "\(label): an export was published")
        case .add, .rotate, .importDotenv:
            break // the entries above: nothing new, nothing changed
        }
        return true
    }

    /// What the run that met no fault must have done.
    func expectCompleted(_ command: Command, in directory: String, baseline: Baseline, sandbox: Sandbox, result: RunResult) async throws {
        let vault = directory + "/vault.db"
        let entries = try await Baseline.entries(sandbox, vault)
        try Baseline.integrityCheck(sandbox, vault)
        switch command {
        case .add:
            let added = try await sandbox.run(["get", "new", "--vault", vault])
            #expect(added.out == baseline.newSecret + "\n", "the added entry does not open to its value")
        case .rotate:
            let rotated = try await sandbox.run(["get", "alpha", "--vault", vault])
            #expect(rotated.out == baseline.newSecret + "\n", "the rotated entry does not open to its new value")
        case .passwd:
            let old = try await sandbox.run(["verify", "--vault", vault])
            #expect(old.status == 77, "the old passphrase still opens the vault: \(old)")
            let new = try await sandbox.run(["verify", "--vault", vault], env: ["KEYSEAL_PASSPHRASE_FILE": baseline.newPassphraseFile])
            #expect(new.status == 0 && Baseline.summary(new) == baseline.verifySummary, "\(new)")
        case .backup, .backupOverOlder:
            #expect(try await Baseline.entries(sandbox, directory + "/copy.db") == baseline.entries)
        case .restore:
            #expect(entries == (try await Baseline.entries(sandbox, baseline.olderBackupPath)), "the vault is not the backup restored")
        case .importDotenv, .importReplace:
            #expect(entries.count > baseline.entries.count || command == .importReplace, "nothing was imported: \(result)")
        case .keyAdd:
            let keyed = try await sandbox.run(["verify", "--vault", vault], env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": directory + "/vault.key"])
            #expect(keyed.status == 0, "the new key file does not open the vault: \(keyed)")
        case .export, .exportPlaintext:
            #expect(FileManager.default.fileExists(atPath: directory + (command == .export ? "/out.kse" : "/out.json")))
        }
        if command != .passwd {
            let verified = try await sandbox.run(["verify", "--vault", vault])
            #expect(verified.status == 0, "\(verified)")
        }
    }

    // MARK: RLIMIT_FSIZE

    @Test("over a file size limit (ulimit -f), add says so and the vault is unchanged")
    func fileSizeLimit() async throws {
        let sandbox = try Sandbox()
        let prlimit = try #require(["/usr/bin/prlimit", "/bin/prlimit"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                   "prlimit(1) (util-linux) is needed")
        let baseline = try await Baseline.make(sandbox, label: "fsize", extraEntries: 0, tag: "df-fsize")
        try sandbox.write(baseline.vaultBytes, to: sandbox.vault)
        let size = try #require(sandbox.bytes(sandbox.vault)).count
        // A value that needs new pages, with a limit a little above the file.
        let large = String(repeating: "z", count: 30_000)
        let limited = try await sandbox.spawn(prlimit, ["--fsize=\(size + 2_000)", sandbox.keyseal, "add", "large", "--vault", sandbox.vault],
                                              stdin: Data((large + "\n").utf8), env: [:], label: ["prlimit keyseal add large"])
        #expect(limited.status == 1, "\(limited)")
        #expect(limited.err.contains("keyseal: error: cannot write the vault \(sandbox.vault): ") && limited.err.contains("File too large"), "\(limited)")
        #expect(limited.err.contains("keyseal: hint: the file size limit (ulimit -f) is too small for the vault; the vault is unchanged"), "\(limited)")
        #expect(try await Baseline.entries(sandbox, sandbox.vault) == baseline.entries)
        #expect(!FileManager.default.fileExists(atPath: sandbox.vault + "-journal"))
        try Baseline.integrityCheck(sandbox, sandbox.vault)
        // Without the limit, the same add succeeds.
        let added = try await sandbox.run(["add", "large", "--vault", sandbox.vault], stdin: large + "\n")
        #expect(added.status == 0, "\(added)")
    }

    // MARK: Support

    struct Tally {
        var points: [String] = []
        var failed = 0
        var completed = 0
        var hotJournals = 0
        var messages = Set<String>()
    }

    /// Every file (not directory) below `directory`, recursively, by full path.
    static func files(under directory: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue { files.append(path) }
        }
        return files.sorted()
    }

    /// An error line with the run's paths and times made generic, so that
    /// the distinct messages can be counted.
    static func normalized(_ line: String, directory: String) -> String {
        var text = line.replacingOccurrences(of: directory + "/", with: "")
        if let stamp = text.range(of: #"[0-9]{8}T[0-9]{6}Z"#, options: .regularExpression) { text.replaceSubrange(stamp, with: "TIME") }
        return text
    }
}

/// The vault every run of a round starts from, and what it holds.
struct Baseline {
    let vaultBytes: Data
    /// `list --json`'s entries, as sorted JSON, and verify's summary line.
    let entries: [String]
    let verifySummary: String
    let keySlots: String
    /// A backup of this vault made earlier (one entry fewer).
    let olderBackup: Data
    let olderBackupPath: String
    let newSecret: String
    let secrets: [String]
    let newPassphraseFile: String
    /// dotenv files: two new names; one new name and one that exists.
    let newEntries: String
    let replacingEntries: String

    static func make(_ sandbox: Sandbox, label: String, extraEntries: Int, tag: String) async throws -> Baseline {
        let directory = sandbox.work + "/" + label
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let vault = directory + "/vault.db"
        try await sandbox.initVault(vault)
        let alpha = Sentinel.make("\(tag)-alpha"), beta = Sentinel.make("\(tag)-beta")
        try await sandbox.add("alpha", secret: alpha, vault: vault)
        let older = directory + "/older.db"
        let backedUp = try await sandbox.run(["backup", "--vault", vault, older])
        try #require(backedUp.status == 0, "\(backedUp)")
        try await sandbox.add("beta", secret: beta, vault: vault)
        // A previous value, so rotate and verify have one to keep and open.
        let rotated = try await sandbox.run(["rotate", "beta", "--vault", vault], stdin: beta + "-2\n")
        try #require(rotated.status == 0, "\(rotated)")
        if extraEntries > 0 {
            let extra = directory + "/extra.env"
            try sandbox.write((0..<extraEntries).map { "extra_\($0)=\(tag)-extra-value-\($0)-\(String(repeating: "x", count: 200))\n" }.joined(), to: extra)
            let imported = try await sandbox.run(["import", "--vault", vault, "--apply", "--from", "dotenv", extra])
            try #require(imported.status == 0, "\(imported)")
        }
        let newPassphrase = directory + "/new-passphrase"
        try sandbox.write("another passphrase for \(tag)\n", to: newPassphrase)
        let newEntries = directory + "/new.env", replacing = directory + "/replace.env"
        try sandbox.write("gamma=\(tag)-gamma-value\ndelta=\(tag)-delta-value\n", to: newEntries)
        try sandbox.write("beta=\(tag)-beta-replaced\nepsilon=\(tag)-epsilon-value\n", to: replacing)
        let verified = try await sandbox.run(["verify", "--vault", vault])
        try #require(verified.status == 0, "\(verified)")
        let slots = try await sandbox.run(["key", "list", "--json", "--vault", vault])
        try #require(slots.status == 0, "\(slots)")
        return Baseline(
            vaultBytes: try #require(sandbox.bytes(vault)), entries: try await entries(sandbox, vault),
            verifySummary: summary(verified), keySlots: slots.out, olderBackup: try #require(sandbox.bytes(older)), olderBackupPath: older,
            newSecret: Sentinel.make("\(tag)-new"),
            secrets: [alpha, beta, beta + "-2", Sentinel.make("\(tag)-new")],
            newPassphraseFile: newPassphrase, newEntries: newEntries, replacingEntries: replacing)
    }

    /// Each entry of `list --json`, as JSON with sorted keys.
    static func entries(_ sandbox: Sandbox, _ vault: String) async throws -> [String] {
        let listed = try await sandbox.run(["list", "--json", "--vault", vault])
        try #require(listed.status == 0, "\(listed)")
        let document = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any])
        let entries = try #require(document["entries"] as? [[String: Any]])
        return try entries.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
    }

    /// verify's report without the path: "intact; 2 entries, ...".
    static func summary(_ verified: RunResult) -> String {
        verified.err.components(separatedBy: ": intact; ").dropFirst().joined()
    }

    /// SQLite's own check, by python3's sqlite3 module: "ok".
    static func integrityCheck(_ sandbox: Sandbox, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let literal = "'" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        try sandbox.python("""
            import sqlite3
            rows = sqlite3.connect(\(literal)).execute('PRAGMA integrity_check').fetchall()
            assert rows == [('ok',)], rows
            """)
    }
}

/// The LD_PRELOAD library of Support/failing_io.c.
enum FailingIO {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/failing_io.c").path

    /// Compiles the library into `directory` and returns its path.
    static func build(in directory: String) throws -> String {
        let library = directory + "/libfailio.so"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["cc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", library, source, "-ldl"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "cc failed (scripts/setup installs gcc): \(String(decoding: message, as: UTF8.self))")
        return library
    }

    /// The library's count of one run: "calls=C failed=F op=OP path=PATH".
    struct Report {
        let calls: Int
        let failed: Int
        let op: String
        let path: String

        init(calls: Int, failed: Int, op: String, path: String) {
            self.calls = calls
            self.failed = failed
            self.op = op
            self.path = path
        }

        init?(path report: String) {
            guard let text = try? String(contentsOfFile: report, encoding: .utf8) else { return nil }
            var fields: [String: String] = [:]
            for part in text.trimmingCharacters(in: .newlines).split(separator: " ", maxSplits: 3) {
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { fields[pair[0]] = pair[1] }
            }
            guard let calls = fields["calls"].flatMap(Int.init), let failed = fields["failed"].flatMap(Int.init) else { return nil }
            self.calls = calls
            self.failed = failed
            op = fields["op"] ?? "-"
            path = fields["path"] ?? "-"
        }
    }
}
