// backup, restore and verify, end to end: concurrent writers, kill -9 in the
// middle of a backup, in-place restore, tampered and foreign backups, the
// automatic backups taken before passwd, restore and a format migration.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("backup, restore and verify")
struct BackupRestoreTests {
    /// name -> fingerprint, from `list --json` of `vault`.
    static func fingerprints(_ sandbox: Sandbox, _ vault: String) async throws -> [String: String] {
        let listed = try await sandbox.run(["list", "--json", "--vault", vault])
        try #require(listed.status == 0, "\(listed)")
        let document = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any])
        let entries = try #require(document["entries"] as? [[String: Any]])
        var result: [String: String] = [:]
        for entry in entries { result[entry["name"] as! String] = entry["fingerprint"] as? String }
        return result
    }

    static func inode(_ path: String) -> ino_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_ino : nil
    }

    @Test("a backup taken while 4 processes add entries verifies and holds a committed state of each writer")
    func backupDuringWriters() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let perWriter = 25
        // Each writer adds w<i>-0, w<i>-1, ... in order, one process per add.
        let script = """
            i=$1; n=$2; j=0
            while [ $j -lt $n ]; do
              printf 'value-%s-%s\\n' $i $j | "$0" add "w$i-$j" --vault "$3" || exit 1
              j=$((j+1))
            done
            """
        // Started as plain processes, so the backups below run while they add.
        var writers: [Process] = []
        for writer in 0..<4 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script, sandbox.keyseal, "\(writer)", "\(perWriter)", sandbox.vault]
            process.environment = sandbox.environment([:])
            process.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            writers.append(process)
        }
        var backups: [String] = []
        for round in 0..<6 {
            usleep(150_000)
            let path = sandbox.work + "/during-\(round).db"
            let taken = try await sandbox.run(["backup", path, "--vault", sandbox.vault])
            #expect(taken.status == 0, "\(taken)")
            if taken.status == 0 { backups.append(path) }
        }
        for writer in writers {
            writer.waitUntilExit()
            #expect(writer.terminationStatus == 0, "a writer failed with status \(writer.terminationStatus)")
        }

        let final = try await Self.fingerprints(sandbox, sandbox.vault)
        #expect(final.count == 4 * perWriter)
        var sawPartialProgress = false
        for backup in backups {
            let verified = try await sandbox.run(["verify", "--vault", backup])
            #expect(verified.status == 0, "\(verified)")
            let copied = try await Self.fingerprints(sandbox, backup)
            for writer in 0..<4 {
                // A committed state: each writer's entries form a prefix.
                let present = (0..<perWriter).filter { copied["w\(writer)-\($0)"] != nil }
                #expect(present == Array(0..<present.count), "writer \(writer) in \(backup): \(present)")
                if present.count < perWriter { sawPartialProgress = true }
            }
            // Same key, same fingerprint: each value is the one that was added.
            for (name, fingerprint) in copied { #expect(final[name] == fingerprint, "\(name) in \(backup)") }
        }
        // Spot-check exact values out of one backup.
        if let first = backups.first, let name = try await Self.fingerprints(sandbox, first).keys.sorted().first {
            let got = try await sandbox.run(["get", name, "--vault", first])
            let parts = name.dropFirst().split(separator: "-")
            #expect(got.out == "value-\(parts[0])-\(parts[1])\n", "\(got)")
        }
        #expect(sawPartialProgress, "no backup was taken while the writers were still adding")
    }

    @Test("kill -9 during a backup leaves the previous backup or a complete new one, never a partial file")
    func killDuringBackup() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        // 150 entries in one import, so a backup takes long enough to be
        // killed in the middle (one process, however slow the build).
        try sandbox.write((0..<150).map { "filler_\($0)=filler-value-\($0)\n" }.joined(), to: sandbox.work + "/filler.env")
        let fill = try await sandbox.run(["import", "filler.env", "--apply", "--vault", sandbox.vault])
        try #require(fill.status == 0, "\(fill)")
        let destination = sandbox.work + "/nightly.db"
        let first = try await sandbox.run(["backup", destination, "--vault", sandbox.vault])
        try #require(first.status == 0, "\(first)")

        var outcomes: [String: Int] = [:]
        for round in 0..<24 {
            // Each round changes the vault, so a new backup differs from the last.
            try await sandbox.add("round-\(round)", secret: "round-value-\(round)")
            let before = try #require(sandbox.bytes(destination))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: sandbox.keyseal)
            process.arguments = ["backup", destination, "--vault", sandbox.vault]
            process.environment = sandbox.environment([:])
            process.currentDirectoryURL = URL(fileURLWithPath: sandbox.work)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32.random(in: 0...40_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            let after = try #require(sandbox.bytes(destination), "round \(round): the backup file is gone")
            if after == before {
                outcomes["previous", default: 0] += 1
            } else {
                // Not the previous file: it must be a whole, verified copy with the new entry.
                let verified = try await sandbox.run(["verify", "--vault", destination])
                #expect(verified.status == 0, "round \(round): \(verified)")
                let copied = try await Self.fingerprints(sandbox, destination)
                #expect(copied["round-\(round)"] != nil, "round \(round): a changed file without the new entry")
                outcomes["new", default: 0] += 1
            }
            // Leftovers of a killed copy are private, and never the backup's name.
            for name in try FileManager.default.contentsOfDirectory(atPath: sandbox.work) where name.hasPrefix(".nightly.db.") {
                #expect(sandbox.mode(sandbox.work + "/" + name) == 0o600, "\(name)")
            }
        }
        #expect(outcomes.values.reduce(0, +) == 24, "\(outcomes)")
        print("kill -9 during backup: \(outcomes)")
    }

    @Test("restore verifies the backup, keeps the current vault, and replaces its contents in place")
    func restoreInPlace() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        try await sandbox.add("beta", secret: "beta-value")
        let backup = sandbox.work + "/saved.db"
        let taken = try await sandbox.run(["backup", backup, "--vault", sandbox.vault])
        try #require(taken.status == 0, "\(taken)")
        #expect(taken.out == backup + "\n")
        let savedBytes = try #require(sandbox.bytes(backup))

        let removed = try await sandbox.run(["rm", "--yes", "alpha", "--vault", sandbox.vault])
        try #require(removed.status == 0, "\(removed)")
        try await sandbox.add("gamma", secret: "gamma-value")
        let inodeBefore = Self.inode(sandbox.vault)

        let restored = try await sandbox.run(["restore", backup, "--vault", sandbox.vault])
        #expect(restored.status == 0, "\(restored)")
        #expect(Self.inode(sandbox.vault) == inodeBefore, "the vault file was replaced, not rewritten")
        #expect(try await Self.fingerprints(sandbox, sandbox.vault).keys.sorted() == ["alpha", "beta"])
        let got = try await sandbox.run(["get", "alpha", "--vault", sandbox.vault])
        #expect(got.out == "alpha-value\n", "\(got)")
        #expect(sandbox.bytes(backup) == savedBytes, "restore wrote to the backup")

        // The vault as it was (with gamma) was kept, and said where.
        let kept = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-restore.db"), "\(kept)")
        let keptPath = sandbox.vault + ".backups/" + (kept.first ?? "")
        #expect(restored.err.contains(keptPath), "\(restored)")
        #expect(try await Self.fingerprints(sandbox, keptPath).keys.sorted() == ["beta", "gamma"])
        #expect(sandbox.mode(sandbox.vault + ".backups") == 0o700)
        #expect(sandbox.mode(keptPath) == 0o600)
    }

    @Test("restore into a path with no vault creates it from the backup")
    func restoreIntoEmptyPath() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("only", secret: "only-value")
        let backup = sandbox.work + "/saved.db"
        #expect(try await sandbox.run(["backup", backup, "--vault", sandbox.vault]).status == 0)
        let fresh = sandbox.work + "/new/home.db"
        let restored = try await sandbox.run(["restore", backup, "--vault", fresh])
        #expect(restored.status == 0, "\(restored)")
        let got = try await sandbox.run(["get", "only", "--vault", fresh])
        #expect(got.out == "only-value\n", "\(got)")
        #expect(!FileManager.default.fileExists(atPath: fresh + ".backups"))
    }

    @Test("a tampered backup, a wrong passphrase or a file that is no vault is refused and nothing changes")
    func restoreRefusals() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        let backup = sandbox.work + "/saved.db"
        #expect(try await sandbox.run(["backup", backup, "--vault", sandbox.vault]).status == 0)
        try await sandbox.add("beta", secret: "beta-value")
        let vaultBytes = try #require(sandbox.bytes(sandbox.vault))

        let wrong = sandbox.root + "/wrong-passphrase"
        try sandbox.write("not the passphrase\n", to: wrong)
        let refusedUnlock = try await sandbox.run(["restore", backup, "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": wrong])
        #expect(refusedUnlock.status == 77, "\(refusedUnlock)")

        let tampered = sandbox.work + "/tampered.db"
        try FileManager.default.copyItem(atPath: backup, toPath: tampered)
        try sandbox.python("import sqlite3; c=sqlite3.connect('tampered.db'); c.execute(\"update entries set description='moved' where name='alpha'\"); c.commit()")
        let refusedTamper = try await sandbox.run(["restore", tampered, "--vault", sandbox.vault])
        #expect(refusedTamper.status == 65, "\(refusedTamper)")
        #expect(refusedTamper.err.contains("\"alpha\""), "\(refusedTamper)")

        let notVault = sandbox.work + "/notes.txt"
        try sandbox.write("hello\n", to: notVault)
        let refusedFile = try await sandbox.run(["restore", notVault, "--vault", sandbox.vault])
        #expect(refusedFile.status == 65, "\(refusedFile)")
        let missing = try await sandbox.run(["restore", sandbox.work + "/none.db", "--vault", sandbox.vault])
        #expect(missing.status == 66, "\(missing)")
        #expect(missing.err.contains("no backup at"), "\(missing)")
        let itself = try await sandbox.run(["restore", sandbox.vault, "--vault", sandbox.vault])
        #expect(itself.status == 64, "\(itself)")

        #expect(sandbox.bytes(sandbox.vault) == vaultBytes, "a refused restore changed the vault")
        #expect(!FileManager.default.fileExists(atPath: sandbox.vault + ".backups"), "a refused restore took a backup")
        let left = try FileManager.default.contentsOfDirectory(atPath: sandbox.work).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "private copies left behind: \(left)")
    }

    @Test("backup replaces only an older backup of the same vault")
    func backupTargets() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        let notes = sandbox.work + "/notes.txt"
        try sandbox.write("keep me\n", to: notes)
        let overNotes = try await sandbox.run(["backup", notes, "--vault", sandbox.vault])
        #expect(overNotes.status == 73, "\(overNotes)")
        #expect(sandbox.bytes(notes) == Data("keep me\n".utf8))

        let other = sandbox.work + "/other.db"
        try await sandbox.initVault(other)
        let otherBytes = sandbox.bytes(other)
        let overOther = try await sandbox.run(["backup", other, "--vault", sandbox.vault])
        #expect(overOther.status == 73, "\(overOther)")
        #expect(sandbox.bytes(other) == otherBytes)

        let itself = try await sandbox.run(["backup", sandbox.vault, "--vault", sandbox.vault])
        #expect(itself.status == 64, "\(itself)")

        let backup = sandbox.work + "/saved.db"
        #expect(try await sandbox.run(["backup", backup, "--vault", sandbox.vault]).status == 0)
        try await sandbox.add("beta", secret: "beta-value")
        let again = try await sandbox.run(["backup", backup, "--vault", sandbox.vault])
        #expect(again.status == 0, "\(again)")
        #expect(try await Self.fingerprints(sandbox, backup).keys.sorted() == ["alpha", "beta"])

        let directory = sandbox.work + "/nightly"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let intoDirectory = try await sandbox.run(["backup", directory, "--vault", sandbox.vault])
        #expect(intoDirectory.status == 0, "\(intoDirectory)")
        let named = intoDirectory.out.trimmingCharacters(in: .newlines)
        #expect(named.hasPrefix(directory + "/vault-") && named.hasSuffix("Z.db"), "\(intoDirectory)")
        #expect(FileManager.default.fileExists(atPath: named))
    }

    @Test("verify opens every value, names each that fails, and exits 65")
    func verifyReports() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        try await sandbox.add("beta", secret: "beta-value")
        let rotated = try await sandbox.run(["rotate", "alpha", "--vault", sandbox.vault], stdin: "alpha-2\n")
        try #require(rotated.status == 0, "\(rotated)")

        let intact = try await sandbox.run(["verify", "--vault", sandbox.vault])
        #expect(intact.status == 0, "\(intact)")
        #expect(intact.out.contains("intact; 2 entries, 1 previous value, 0 kept tokens"), "\(intact)")
        // --file-only needs no passphrase: none is given here.
        let fileOnly = try await sandbox.run(["verify", "--file-only", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": nil])
        #expect(fileOnly.status == 0, "\(fileOnly)")

        try sandbox.python("import sqlite3; c=sqlite3.connect('vault.db'); c.execute(\"update entries set expires_at=1 where name='beta'\"); c.execute(\"update previous_values set replaced_at=replaced_at+1\"); c.commit()")
        let damaged = try await sandbox.run(["verify", "--json", "--vault", sandbox.vault])
        #expect(damaged.status == 65, "\(damaged)")
        #expect(damaged.err.contains("entry \"beta\": its value does not open"), "\(damaged)")
        #expect(damaged.err.contains("entry \"alpha\": its previous version 1 does not open"), "\(damaged)")
        let report = try #require(try JSONSerialization.jsonObject(with: damaged.stdout) as? [String: Any])
        #expect(report["intact"] as? Bool == false)
        #expect((report["failures"] as? [[String: String]])?.map { $0["name"] ?? "" } == ["alpha", "beta"])
    }

    @Test("passwd first keeps the vault as it was; the old passphrase opens only that copy")
    func passwdTakesBackup() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        let newPassphrase = sandbox.root + "/new-passphrase"
        try sandbox.write("a new passphrase\n", to: newPassphrase)
        let changed = try await sandbox.shell(FileModeTests.umask000 + " --new-passphrase-fd 3 3<\"$NEWP\"", ["passwd", "--kdf", "insecure-testing", "--vault", sandbox.vault], env: ["NEWP": newPassphrase])
        #expect(changed.status == 0, "\(changed)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-passwd.db"), "\(kept)")
        let keptPath = sandbox.vault + ".backups/" + (kept.first ?? "")
        #expect(changed.err.contains(keptPath), "\(changed)")
        #expect(sandbox.mode(keptPath) == 0o600)
        #expect(sandbox.mode(sandbox.vault + ".backups") == 0o700)
        let oldOpensCopy = try await sandbox.run(["verify", "--vault", keptPath])
        #expect(oldOpensCopy.status == 0, "\(oldOpensCopy)")
        let oldOpensVault = try await sandbox.run(["verify", "--vault", sandbox.vault])
        #expect(oldOpensVault.status == 77, "\(oldOpensVault)")
    }

    @Test("opening an older format keeps the file as it was before migrating it")
    func migrationTakesBackup() async throws {
        let sandbox = try Sandbox()
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../StorageTests/Vectors/v1-golden.vault").standardizedFileURL.path
        let old = sandbox.work + "/old.db"
        try FileManager.default.copyItem(atPath: golden, toPath: old)
        let listed = try await sandbox.run(["list", "--vault", old])
        #expect(listed.status == 0, "\(listed)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: old + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-format-3.db"), "\(kept)")
        #expect(listed.err.contains("upgraded"), "\(listed)")
        try sandbox.python("""
            import sqlite3
            c = sqlite3.connect('old.db.backups/\(kept.first ?? "")')
            assert c.execute('pragma user_version').fetchone()[0] == 1
            assert c.execute('pragma integrity_check').fetchone()[0] == 'ok'
            """)
        // Opened again, it is format 3 already: no second backup.
        #expect(try await sandbox.run(["list", "--vault", old]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: old + ".backups").count == 1)
    }

    @Test("under umask 000, backup and restore write 0600 files and 0700 directories")
    func umaskZero() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-value")
        let backup = sandbox.work + "/deep/dir/saved.db"
        let taken = try await sandbox.shell(FileModeTests.umask000, ["backup", backup, "--vault", sandbox.vault])
        #expect(taken.status == 0, "\(taken)")
        #expect(sandbox.mode(backup) == 0o600)
        #expect(sandbox.mode(sandbox.work + "/deep") == 0o700)
        let restored = try await sandbox.shell(FileModeTests.umask000, ["restore", backup, "--vault", sandbox.vault])
        #expect(restored.status == 0, "\(restored)")
        #expect(sandbox.mode(sandbox.vault) == 0o600)
        let backups = sandbox.vault + ".backups"
        #expect(sandbox.mode(backups) == 0o700)
        for name in try FileManager.default.contentsOfDirectory(atPath: backups) {
            #expect(sandbox.mode(backups + "/" + name) == 0o600, "\(name)")
        }
    }
}
