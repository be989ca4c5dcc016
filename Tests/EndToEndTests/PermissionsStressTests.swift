// Permissions (issue 8): under umask 000, every file and directory keyseal
// creates is at most 0600 / 0700: the vault, its journal (seen while a
// write waits on a reader's lock), backups, the automatic backups
// directory and its copies, a restored vault, exports, key files, the
// agent's socket and its directory. And the vault files keyseal will not
// use as they are: one open to other users (set to 0600, with a warning,
// once), a symbolic link, and a file or a directory owned by another user
// (refused, exit 77, nothing changed).
//
// scripts/test runs each once; `scripts/stress permissions SECONDS` repeats
// the umask sweep and the journal observation (whose timing varies).
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("files and directories keyseal creates, and vault files it refuses")
struct PermissionsStressTests {
    /// The shell sets the loosest umask, then becomes keyseal.
    static let umask000 = "umask 000; exec \"$0\" \"$@\""

    static func octal(_ mode: mode_t?) -> String { mode.map { String($0, radix: 8) } ?? "missing" }

    // MARK: Under umask 000

    @Test("under umask 000, every file keyseal creates is 0600 and every directory 0700")
    func umaskZeroSweep() async throws {
        let rounds = try await StressBudget.repeatRounds(bounded: 1) { round in
            let sandbox = try Sandbox()
            let checked = try await Self.createEverything(sandbox, tag: "perm-sweep-\(round)")
            if round == 0 { print("PermissionsStressTests umask 000: \(checked.files) files and \(checked.directories) directories checked") }
        }
        print("PermissionsStressTests umask 000: \(rounds) rounds")
    }

    /// Runs every command that creates a file, under umask 000, then checks
    /// the mode of everything below the work directory and the agent's.
    static func createEverything(_ sandbox: Sandbox, tag: String) async throws -> (files: Int, directories: Int) {
        // Inputs live outside the work directory, which keyseal alone fills.
        let made = sandbox.work + "/made/by/keyseal"
        let vault = made + "/vault.db"
        let newPassphrase = sandbox.root + "/new-passphrase"
        try sandbox.write("the next passphrase\n", to: newPassphrase)
        let dotenv = sandbox.root + "/replace.env"
        try sandbox.write("alpha=\(tag)-replaced\n", to: dotenv)
        func keyseal(_ arguments: [String], stdin: String = "", fd3: String? = nil, env: [String: String?] = [:]) async throws {
            let script = fd3.map { "umask 000; exec \"$0\" \"$@\" 3<\"\($0)\"" } ?? umask000
            let result = try await sandbox.shell(script, arguments, stdin: stdin, env: env)
            try #require(result.status == 0, "\(result)")
        }

        try await keyseal(["init", "--kdf", "insecure-testing", "--vault", vault])
        try await keyseal(["add", "alpha", "--vault", vault], stdin: Sentinel.make("\(tag)-alpha") + "\n")
        try await keyseal(["backup", "--vault", vault, sandbox.work + "/copies/of/vault/copy.db"])
        try await keyseal(["passwd", "--vault", vault, "--new-passphrase-fd", "3", "--kdf", "insecure-testing"], fd3: newPassphrase)
        let next: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": newPassphrase]
        try await keyseal(["import", "--vault", vault, "--apply", "--replace", "--from", "dotenv", dotenv], env: next)
        try await keyseal(["export", "--vault", vault, "--to", made + "/export.kse", "--export-passphrase-fd", "3", "--kdf", "insecure-testing"],
                          fd3: newPassphrase, env: next)
        try await keyseal(["export", "--vault", vault, "--to", made + "/export.json", "--plaintext"], env: next)
        try await keyseal(["key", "add", "--vault", vault, "--keyfile", made + "/vault.key"], env: next)
        try await keyseal(["restore", sandbox.work + "/copies/of/vault/copy.db", "--vault", sandbox.work + "/restored/vault.db"])
        try await keyseal(["restore", sandbox.work + "/copies/of/vault/copy.db", "--vault", vault])

        // The agent, started as a shell would start it, with umask 000.
        let launcher = """
            import os, signal, subprocess, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.umask(0)
            sys.exit(subprocess.call(sys.argv[1:]))
            """
        let unlocked = try await sandbox.python3(launcher, [sandbox.keyseal, "unlock", "--vault", vault])
        try #require(unlocked.status == 0, "\(unlocked)")
        #expect(sandbox.mode(sandbox.agentDirectory) == 0o700, "agent directory: \(octal(sandbox.mode(sandbox.agentDirectory)))")
        let sockets = sandbox.agentSockets()
        #expect(sockets.count == 1, "\(sockets)")
        for socket in sockets {
            let path = sandbox.agentDirectory + "/" + socket
            #expect(sandbox.mode(path) == 0o600, "\(socket): \(octal(sandbox.mode(path)))")
        }
        let locked = try await sandbox.run(["lock", "--vault", vault], env: noPassphraseSource)
        #expect(locked.status == 0, "\(locked)")

        // Everything below work/ was made by keyseal.
        var files = 0, directories = 0
        let walker = try #require(FileManager.default.enumerator(atPath: sandbox.work))
        while let relative = walker.nextObject() as? String {
            let path = sandbox.work + "/" + relative
            var info = stat()
            try #require(lstat(path, &info) == 0)
            let mode = info.st_mode & 0o7777
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                directories += 1
                #expect(mode == 0o700, "\(relative): \(octal(mode))")
            case S_IFREG:
                files += 1
                #expect(mode == 0o600, "\(relative): \(octal(mode))")
            default:
                Issue.record("\(relative) is neither a file nor a directory")
            }
        }
        let expected = ["made/by/keyseal/vault.db", "made/by/keyseal/export.kse", "made/by/keyseal/export.json", "made/by/keyseal/vault.key",
                        "copies/of/vault/copy.db", "restored/vault.db"]
        for name in expected { #expect(FileManager.default.fileExists(atPath: sandbox.work + "/" + name), "\(name) was not made") }
        let copies = try FileManager.default.contentsOfDirectory(atPath: vault + ".backups")
        #expect(copies.count == 3, "before-passwd, before-import and before-restore: \(copies)")
        return (files, directories)
    }

    @Test("the vault's journal, seen while add waits on a reader's lock under umask 000, is 0600")
    func journalWhileWriting() async throws {
        let rounds = try await StressBudget.repeatRounds(bounded: 1) { round in
            let sandbox = try Sandbox()
            let created = try await sandbox.shell(Self.umask000, ["init", "--kdf", "insecure-testing", "--vault", sandbox.vault])
            try #require(created.status == 0, "\(created)")
            let journal = sandbox.vault + "-journal"

            // A reader holds a shared lock: add can write its journal, not commit.
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            reader.arguments = ["-c", """
                import sqlite3, sys
                connection = sqlite3.connect(sys.argv[1], isolation_level=None)
                connection.execute('BEGIN')
                connection.execute('SELECT count(*) FROM entries').fetchall()
                print('locked', flush=True)
                sys.stdin.readline()
                connection.execute('COMMIT')
                """, sandbox.vault]
            let toReader = Pipe(), fromReader = Pipe()
            reader.standardInput = toReader
            reader.standardOutput = fromReader
            try reader.run()
            defer { if reader.isRunning { reader.terminate() } }
            let ready = fromReader.fileHandleForReading.availableData
            try #require(String(decoding: ready, as: UTF8.self).hasPrefix("locked"), "the reader did not take its lock")

            // add runs beside this test (the harness's run waits for its child).
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: Sandbox.setsid)
            writer.arguments = ["--wait", "/bin/sh", "-c", Self.umask000, sandbox.keyseal, "add", "entry", "--vault", sandbox.vault]
            writer.environment = sandbox.environment([:])
            writer.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
            let toWriter = Pipe(), writerErrors = Pipe()
            writer.standardInput = toWriter
            writer.standardOutput = FileHandle.nullDevice
            writer.standardError = writerErrors
            try writer.run()
            toWriter.fileHandleForWriting.write(Data((Sentinel.make("perm-journal-\(round)") + "\n").utf8))
            try toWriter.fileHandleForWriting.close()
            var seen: mode_t?
            for _ in 0..<800 where seen == nil {
                seen = sandbox.mode(journal)
                if seen == nil { usleep(5_000) }
            }
            let vaultMode = sandbox.mode(sandbox.vault)
            toReader.fileHandleForWriting.write(Data("\n".utf8))
            let errors = writerErrors.fileHandleForReading.readDataToEndOfFile()
            writer.waitUntilExit()
            reader.waitUntilExit()
            #expect(writer.terminationStatus == 0, "add failed: \(String(decoding: errors, as: UTF8.self))")
            #expect(seen == 0o600, "the journal, while add waited: \(Self.octal(seen))")
            #expect(vaultMode == 0o600)
            #expect(!FileManager.default.fileExists(atPath: journal), "the journal outlived the commit")
            #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.work) == ["vault.db"])
        }
        print("PermissionsStressTests journal: \(rounds) rounds, the journal seen mid-write each time")
    }

    // MARK: A vault open to other users

    @Test("a vault open to other users is set to 0600 with one warning, by list and by header's fast path",
          arguments: [(0o644 as mode_t, "readable"), (0o620, "writable"), (0o640, "readable"), (0o601, "open")])
    func looseVaultWarnsOnce(mode: mode_t, how: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: Sentinel.make("perm-loose-\(mode)"))
        for command in [["list"], ["header", "alpha"]] {
            try #require(chmod(sandbox.vault, mode) == 0)
            let first = try await sandbox.run(command + ["--vault", sandbox.vault])
            #expect(first.status == 0, "\(first)")
            #expect(first.err.hasPrefix("keyseal: warning: the vault \(sandbox.vault) was \(how) by other users (mode 0\(String(mode, radix: 8))); it is now 0600\n"),
                    "\(first)")
            #expect(sandbox.mode(sandbox.vault) == 0o600)
            let second = try await sandbox.run(command + ["--vault", sandbox.vault])
            #expect(second.status == 0 && !second.err.contains("warning"), "warned twice: \(second)")
        }
    }

    @Test("a file that is not a keyseal vault keeps its mode, and gets no warning")
    func foreignFileKeepsItsMode() async throws {
        let sandbox = try Sandbox()
        let other = sandbox.work + "/notes.db"
        try sandbox.write("not a vault at all", to: other, mode: 0o644)
        let listed = try await sandbox.run(["list", "--vault", other])
        #expect(listed.status == 65, "\(listed)")
        #expect(!listed.err.contains("warning"), "\(listed)")
        #expect(sandbox.mode(other) == 0o644)
    }

    // MARK: Refused vault files

    @Test("a vault path that is a symbolic link is refused (77), the file behind it untouched, its mode too",
          arguments: [["list"], ["header", "alpha"], ["add", "beta"], ["verify"], ["backup", "COPY"]])
    func symlinkIsRefused(command: [String]) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: Sentinel.make("perm-link-\(command[0])"))
        #expect(chmod(sandbox.vault, 0o644) == 0)
        let before = try #require(sandbox.bytes(sandbox.vault))
        let link = sandbox.work + "/link.db"
        try #require(symlink("vault.db", link) == 0)
        let arguments = command.map { $0 == "COPY" ? sandbox.work + "/copy.db" : $0 }
        let refused = try await sandbox.run(arguments + ["--vault", link], stdin: "beta-value\n")
        #expect(refused.status == 77, "\(refused)")
        #expect(refused.err == """
            keyseal: error: the vault \(link) is a symbolic link (to vault.db); keyseal does not follow one
            keyseal: hint: name the file itself, with --vault or KEYSEAL_VAULT

            """, "\(refused)")
        #expect(refused.stdout.isEmpty)
        #expect(sandbox.bytes(sandbox.vault) == before)
        #expect(sandbox.mode(sandbox.vault) == 0o644, "the mode was changed through the link")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.work).sorted() == ["link.db", "vault.db"])
    }

    @Test("a vault owned by another user is refused (77), unchanged, even for root")
    func otherOwnerIsRefused() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: Sentinel.make("perm-owner"))
        try #require(chown(sandbox.vault, Nobody.uid, Nobody.uid) == 0)
        #expect(chmod(sandbox.vault, 0o644) == 0)
        let before = try #require(sandbox.bytes(sandbox.vault))
        for command in [["list"], ["header", "alpha"], ["add", "beta"], ["passwd"]] {
            let refused = try await sandbox.run(command + ["--vault", sandbox.vault], stdin: "beta-value\n")
            #expect(refused.status == 77, "\(refused)")
            #expect(refused.err == """
                keyseal: error: the vault \(sandbox.vault) belongs to another user, nobody (uid 65534); keyseal uses only a vault of your own
                keyseal: hint: run keyseal as its owner, or copy it to a file of your own

                """, "\(refused)")
        }
        var info = stat()
        #expect(stat(sandbox.vault, &info) == 0 && info.st_uid == Nobody.uid && info.st_mode & 0o777 == 0o644, "owner or mode changed")
        #expect(sandbox.bytes(sandbox.vault) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.work) == ["vault.db"])
    }

    @Test("a user's vault in a directory owned by root (as /tmp) is used")
    func rootsDirectoryIsAccepted() async throws {
        let sandbox = try Sandbox()
        // nobody must reach the directory; it is root's, sticky and open like /tmp.
        try #require(chmod(sandbox.root, 0o711) == 0)
        let shared = sandbox.work + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        try #require(chmod(shared, 0o1777) == 0)
        let area = sandbox.root + "/nobody"
        try FileManager.default.createDirectory(atPath: area, withIntermediateDirectories: false)
        try #require(chmod(area, 0o700) == 0 && chown(area, Nobody.uid, Nobody.uid) == 0)
        let passphrase = area + "/passphrase"
        try sandbox.write("nobody's passphrase\n", to: passphrase)
        try #require(chown(passphrase, Nobody.uid, Nobody.uid) == 0)
        let env: [String: String?] = ["HOME": area, "XDG_RUNTIME_DIR": nil, "KEYSEAL_PASSPHRASE_FILE": passphrase]
        let vault = shared + "/vault.db"
        let created = try await sandbox.runAsNobody(["init", "--kdf", "insecure-testing", "--vault", vault], env: env)
        #expect(created.status == 0, "\(created)")
        let added = try await sandbox.runAsNobody(["add", "alpha", "--vault", vault, "--no-agent"], stdin: "perm-root-dir-value\n", env: env)
        #expect(added.status == 0, "\(added)")
        // root, in nobody's stead, is refused: the file is nobody's.
        let asRoot = try await sandbox.run(["list", "--vault", vault])
        #expect(asRoot.status == 77, "\(asRoot)")
    }

    @Test("a vault in a directory owned by another user is refused (77); back in its owner's hands, it is used")
    func otherOwnersDirectoryIsRefused() async throws {
        let sandbox = try Sandbox()
        let directory = sandbox.work + "/theirs"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let vault = directory + "/vault.db"
        try await sandbox.initVault(vault)
        try await sandbox.add("alpha", secret: Sentinel.make("perm-dir"), vault: vault)
        try #require(chown(directory, Nobody.uid, Nobody.uid) == 0)
        let before = try #require(sandbox.bytes(vault))
        let refused = try await sandbox.run(["add", "beta", "--vault", vault], stdin: "beta-value\n")
        #expect(refused.status == 77, "\(refused)")
        #expect(refused.err == """
            keyseal: error: the directory \(directory) of the vault \(vault) belongs to another user, nobody (uid 65534), who could replace the vault
            keyseal: hint: keep the vault in a directory of your own

            """, "\(refused)")
        #expect(sandbox.bytes(vault) == before)
        // Back to root (the tests' user), it is used again.
        try #require(chown(directory, 0, 0) == 0)
        let listed = try await sandbox.run(["list", "--vault", vault])
        #expect(listed.status == 0 && listed.out.contains("alpha"), "\(listed)")
    }

    @Test("init and restore refuse another user's vault or directory before writing; a backup may go to another user's directory")
    func refusedBeforeWriting() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: Sentinel.make("perm-before"))
        let theirs = sandbox.work + "/theirs"
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: false)
        try #require(chown(theirs, Nobody.uid, Nobody.uid) == 0)

        let created = try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", theirs + "/vault.db"])
        #expect(created.status == 77, "\(created)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: theirs).isEmpty, "init left files")

        // A backup is a sealed copy; where it goes is the user's choice.
        let backedUp = try await sandbox.run(["backup", "--vault", sandbox.vault, theirs + "/copy.db"])
        #expect(backedUp.status == 0, "\(backedUp)")

        // restore into a vault of nobody's: refused before the automatic backup and the copy.
        let other = sandbox.work + "/other.db"
        try FileManager.default.copyItem(atPath: sandbox.vault, toPath: other)
        try #require(chown(other, Nobody.uid, Nobody.uid) == 0)
        let before = try #require(sandbox.bytes(other))
        let restored = try await sandbox.run(["restore", theirs + "/copy.db", "--vault", other])
        #expect(restored.status == 77, "\(restored)")
        #expect(restored.err.contains("belongs to another user"), "\(restored)")
        #expect(sandbox.bytes(other) == before)
        #expect(!FileManager.default.fileExists(atPath: other + ".backups"), "an automatic backup was taken first")
        // Nor into a new vault in nobody's directory.
        let fresh = try await sandbox.run(["restore", theirs + "/copy.db", "--vault", theirs + "/restored.db"])
        #expect(fresh.status == 77, "\(fresh)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: theirs) == ["copy.db"], "restore left files")
    }
}
