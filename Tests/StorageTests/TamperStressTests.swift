import Foundation
import Testing
import Sealing
@testable import Storage

/// Tamper and truncation (docs/RELIABILITY.md): a small vault flipped byte by
/// byte two ways, truncated at every page boundary and at random offsets,
/// its header and KDF parameters altered, hostile schema objects planted by
/// python3's sqlite3. Every copy is opened in-process through the Storage
/// API under a watchdog, entry by entry: it must be refused (detected) or
/// open with every value exact (harmless); a wrong value is a failure, and
/// after a refused open the file's bytes must be as they were.
///
/// `swift test` runs a bounded sample; `scripts/stress tamper SECONDS`
/// sweeps every byte both ways and adds random truncations until the budget
/// is spent.
@Suite(.serialized) struct TamperStressTests {
    static let stressSeconds = ProcessInfo.processInfo.environment["KEYSEAL_STRESS_SECONDS"].flatMap(Double.init)

    struct Tally: CustomStringConvertible {
        var detected = 0
        var harmless = 0
        var wrong = 0
        var reasons: [String: Int] = [:]

        mutating func add(_ outcome: Outcome) {
            switch outcome {
            case .harmless: harmless += 1
            case let .detected(reason):
                detected += 1
                reasons[reason, default: 0] += 1
            case .wrong: wrong += 1
            }
        }

        mutating func merge(_ other: Tally) {
            detected += other.detected
            harmless += other.harmless
            wrong += other.wrong
            reasons.merge(other.reasons, uniquingKeysWith: +)
        }

        var total: Int { detected + harmless + wrong }

        var description: String {
            let top = reasons.sorted { $0.value > $1.value }.prefix(6).map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            return "\(total) cases: \(detected) detected, \(harmless) harmless, \(wrong) wrong (detected as: \(top))"
        }
    }

    enum Outcome {
        case harmless
        case detected(String)
        case wrong(String)
    }

    /// Opens the vault at `path` the way `keyseal get` would: every entry,
    /// and the rotated entry's previous value, compared with the known
    /// values. A refusal must leave the file's bytes as they were.
    static func judge(_ path: String, _ label: String, watchdog: Watchdog) -> Outcome {
        let before = bytes(of: path)
        let outcome = watchdog.guarding(label) { () -> Outcome in
            do {
                let unlocked = try Vault.open(at: path).unlock(passphrase: secret(GoldenRecipe.passphrase))
                for item in GoldenRecipe.items {
                    let entry = try unlocked.open(item.name)
                    if string(entry.secret) != item.secret { return .wrong("\(item.name) opened to a wrong value") }
                }
                let previous = try unlocked.openPrevious(ByteFlipSweep.rotated, now: GoldenRecipe.createdAt + 120)
                if string(previous) != "value-before-rotation" { return .wrong("the previous value is wrong") }
                return .harmless
            } catch let StorageError.damaged(_, detail) where detail.contains("keyseal did not create") {
                return .detected("a schema object keyseal did not create")
            } catch let error as StorageError {
                return .detected(ByteFlipSweep.category(error))
            } catch {
                return .detected("\(error)")
            }
        }
        if case .detected = outcome {
            let after = bytes(of: path)
            if after != before {
                return .wrong("a refused open changed the file (\(before.count) -> \(after.count) bytes)")
            }
        }
        return outcome
    }

    static func record(_ outcome: Outcome, _ label: String) {
        if case let .wrong(what) = outcome { Issue.record("\(label): \(what)") }
    }

    /// The swept vault of ByteFlipSweep (three entries, one rotated), made once.
    static func sourceVault() throws -> (TemporaryDirectory, [UInt8]) {
        let directory = try TemporaryDirectory()
        _ = try ByteFlipSweep.makeSweptVault(in: directory)
        return (directory, bytes(of: directory.file("vault.db")))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        for suffix in ["", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    // MARK: Byte flips

    /// Every byte xor 0x01 and xor 0x80 (the existing ByteFlipSweep does
    /// xor 0xFF). Bounded: the 100-byte SQLite header and every seventh
    /// byte after it; under scripts/stress every byte.
    @Test func byteFlipsTwoWays() async throws {
        let (_, original) = try Self.sourceVault()
        let watchdog = Watchdog(limit: 60)
        defer { watchdog.stop() }
        let offsets = Self.stressSeconds == nil
            ? Array(0..<100) + Array(stride(from: 100, to: original.count, by: 7))
            : Array(0..<original.count)
        let workers = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
        let tally = try await withThrowingTaskGroup(of: Tally.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let directory = try TemporaryDirectory()
                    let path = directory.file("vault.db")
                    var tally = Tally()
                    for index in stride(from: worker, to: offsets.count, by: workers) {
                        for mask: UInt8 in [0x01, 0x80] {
                            var copy = original
                            copy[offsets[index]] ^= mask
                            try Self.write(copy, to: path)
                            let label = "byte \(offsets[index]) xor 0x\(String(mask, radix: 16))"
                            let outcome = Self.judge(path, label, watchdog: watchdog)
                            Self.record(outcome, label)
                            tally.add(outcome)
                        }
                    }
                    return tally
                }
            }
            var total = Tally()
            for try await part in group { total.merge(part) }
            return total
        }
        #expect(tally.wrong == 0)
        #expect(tally.total == offsets.count * 2)
        print("tamper byte flips over \(original.count) bytes (\(offsets.count) offsets x 2 masks): \(tally)")
    }

    // MARK: Truncation

    /// Cut at every page boundary (0 bytes included) and at random offsets:
    /// never an empty vault, never written over, never a wrong value.
    @Test func truncationAtPagesAndRandomOffsets() throws {
        let (_, original) = try Self.sourceVault()
        let pageSize = Int(original[16]) << 8 | Int(original[17])
        #expect(pageSize == 4096)
        let watchdog = Watchdog(limit: 60)
        defer { watchdog.stop() }
        let directory = try TemporaryDirectory()
        let path = directory.file("vault.db")
        let lengths = Array(stride(from: 0, to: original.count, by: pageSize))
        var generator = SystemRandomNumberGenerator()
        // Bounded: 150 random offsets; under scripts/stress, until the budget is spent.
        let deadline = Self.stressSeconds.map { Date().addingTimeInterval($0) }
        var randomCount = 0
        var tally = Tally()
        var index = 0
        while true {
            let length: Int
            if index < lengths.count {
                length = lengths[index]
            } else if randomCount < 150 || (deadline.map { Date() < $0 } ?? false) {
                length = Int.random(in: 1..<original.count, using: &generator)
                randomCount += 1
            } else {
                break
            }
            index += 1
            try Self.write(Array(original[..<length]), to: path)
            let label = "truncated to \(length) of \(original.count) bytes"
            let outcome = Self.judge(path, label, watchdog: watchdog)
            Self.record(outcome, label)
            tally.add(outcome)
            // Never taken for an empty vault: nothing creates one over it.
            if case .detected = outcome {
                #expect(throws: StorageError.self, "\(label): create replaced it") {
                    _ = try Vault.create(at: path, passphrase: secret("other"), kdf: .insecureTesting)
                }
                #expect(bytes(of: path).count == length, "\(label): the file changed size")
            }
        }
        #expect(tally.wrong == 0)
        print("tamper truncation (\(original.count / pageSize) page boundaries, \(randomCount) random offsets): \(tally)")
    }

    // MARK: Header fields and KDF parameters

    static let headerTampers: [(String, String)] = [
        ("application_id 0", "PRAGMA application_id = 0"),
        ("application_id other", "PRAGMA application_id = 1145258561"),
        ("user_version 0", "PRAGMA user_version = 0"),
        ("user_version 2 (older)", "PRAGMA user_version = 2"),
        ("user_version 1 (older)", "PRAGMA user_version = 1"),
        ("user_version 4 (newer)", "PRAGMA user_version = 4"),
        ("user_version -1", "PRAGMA user_version = -1"),
        ("format_version 2", "UPDATE vault SET format_version = 2"),
        ("format_version 99", "UPDATE vault SET format_version = 99"),
        ("vault_id zeroed", "UPDATE vault SET vault_id = zeroblob(16)"),
        ("vault_id short", "UPDATE vault SET vault_id = zeroblob(15)"),
        ("vault_id text", "UPDATE vault SET vault_id = 'not a blob'"),
        ("header row gone", "DELETE FROM vault"),
        ("kdf ops 0", "UPDATE key_slots SET kdf_ops = 0"),
        ("kdf ops huge", "UPDATE key_slots SET kdf_ops = 1099511627776"),
        ("kdf ops negative", "UPDATE key_slots SET kdf_ops = -1"),
        ("kdf ops 2", "UPDATE key_slots SET kdf_ops = kdf_ops + 1"),
        ("kdf mem 0", "UPDATE key_slots SET kdf_mem = 0"),
        ("kdf mem huge", "UPDATE key_slots SET kdf_mem = 1125899906842624"),
        ("kdf mem negative", "UPDATE key_slots SET kdf_mem = -8192"),
        ("kdf mem doubled", "UPDATE key_slots SET kdf_mem = kdf_mem * 2"),
        ("kdf name scrypt", "UPDATE key_slots SET kdf = 'scrypt'"),
        ("kdf name empty", "UPDATE key_slots SET kdf = ''"),
        ("salt zeroed", "UPDATE key_slots SET salt = zeroblob(length(salt))"),
        ("salt short", "UPDATE key_slots SET salt = x'00'"),
        ("salt empty", "UPDATE key_slots SET salt = x''"),
        ("slot nonce zeroed", "UPDATE key_slots SET nonce = zeroblob(24)"),
        ("wrapped key zeroed", "UPDATE key_slots SET wrapped_key = zeroblob(48)"),
        ("method keyfile", "UPDATE key_slots SET method = 'keyfile'"),
        ("slots gone", "DELETE FROM key_slots"),
        ("slot duplicated with other salt",
         "INSERT INTO key_slots SELECT slot_id + 1, method, kdf, kdf_ops, kdf_mem, randomblob(16), nonce, wrapped_key, created_at FROM key_slots"),
        ("entry nonces swapped",
         "UPDATE entries SET nonce = (SELECT nonce FROM entries e WHERE e.name <> entries.name ORDER BY e.name LIMIT 1)"),
        ("entry ciphertexts swapped",
         "UPDATE entries SET ciphertext = (SELECT ciphertext FROM entries e WHERE e.name <> entries.name ORDER BY e.name LIMIT 1)"),
        ("entry names swapped",
         "UPDATE entries SET name = CASE name WHEN 'gitlab' THEN 'immuta-pat' WHEN 'immuta-pat' THEN 'gitlab' ELSE name END"),
        ("entry ids swapped",
         "UPDATE entries SET entry_id = CASE name WHEN 'gitlab' THEN (SELECT entry_id FROM entries WHERE name = 'immuta-pat') "
             + "WHEN 'immuta-pat' THEN (SELECT entry_id FROM entries WHERE name = 'gitlab') ELSE entry_id END"),
        ("fingerprint zeroed", "UPDATE entries SET fingerprint = zeroblob(16)"),
        ("previous value moved", "UPDATE previous_values SET entry_id = (SELECT entry_id FROM entries WHERE name = 'immuta-pat')"),
        ("previous value ciphertext from entry",
         "UPDATE previous_values SET ciphertext = (SELECT ciphertext FROM entries WHERE name = 'gitlab'), "
             + "nonce = (SELECT nonce FROM entries WHERE name = 'gitlab')"),
        ("journal mode wal", "PRAGMA journal_mode = WAL"),
    ]

    @Test func headerFieldsAndKDFParametersAltered() throws {
        let (source, original) = try Self.sourceVault()
        _ = source
        let watchdog = Watchdog(limit: 60)
        defer { watchdog.stop() }
        let directory = try TemporaryDirectory()
        let path = directory.file("vault.db")
        var tally = Tally()
        var lines: [String] = []
        for (label, sql) in Self.headerTampers {
            try Self.write(original, to: path)
            do { try tamper(path, sql) } catch {
                // The file's own CHECKs refused it: not a tampered copy.
                lines.append("\(label): refused by the file's constraints")
                continue
            }
            let outcome = Self.judge(path, label, watchdog: watchdog)
            Self.record(outcome, label)
            tally.add(outcome)
            lines.append("\(label): \(outcome)")
        }
        #expect(tally.wrong == 0)
        #expect(tally.total >= Self.headerTampers.count - 6)
        print("tamper header and KDF fields: \(tally)\n  " + lines.joined(separator: "\n  "))
    }

    // MARK: Hostile schema objects

    /// Objects another tool could plant with sqlite3, each planted by
    /// python3's sqlite3 module. keyseal refuses a vault holding any object
    /// it did not create (exit 65), before it writes; a changed CHECK on
    /// its own table is not an object of its own and must be harmless.
    static let hostileSchemas: [(label: String, sql: String, refused: Bool)] = [
        ("trigger copying entries to a new table",
         "CREATE TABLE loot (name, nonce, ciphertext); "
             + "CREATE TRIGGER steal AFTER UPDATE ON entries BEGIN INSERT INTO loot VALUES (new.name, new.nonce, new.ciphertext); END;",
         true),
        ("trigger deleting previous values",
         "CREATE TRIGGER forget AFTER INSERT ON entries BEGIN DELETE FROM previous_values; END;", true),
        ("trigger restoring an old ciphertext",
         "CREATE TRIGGER undo AFTER UPDATE OF ciphertext ON entries BEGIN "
             + "UPDATE entries SET ciphertext = old.ciphertext, nonce = old.nonce WHERE name = new.name; END;", true),
        ("view over entries", "CREATE VIEW names AS SELECT name, kind FROM entries;", true),
        ("extra table", "CREATE TABLE extra (x); INSERT INTO extra VALUES (1);", true),
        ("index with an expression", "CREATE INDEX by_lower_name ON entries (lower(name));", true),
        ("plain named index", "CREATE INDEX by_kind ON entries (kind);", true),
        ("analyze statistics", "ANALYZE;", false),
        ("changed CHECK (tighter)",
         "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (length(ciphertext) > 16)', "
             + "'CHECK (length(ciphertext) > 16 AND length(ciphertext) < 100000)') WHERE name = 'entries'; "
             + "PRAGMA writable_schema = OFF;", false),
        ("changed CHECK (dropped)",
         "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (length(nonce) = 24)', '') "
             + "WHERE name = 'entries'; PRAGMA writable_schema = OFF;", false),
    ]

    @Test func hostileSchemaObjectsAreRefusedOrHarmless() throws {
        let (_, original) = try Self.sourceVault()
        let watchdog = Watchdog(limit: 60)
        defer { watchdog.stop() }
        let directory = try TemporaryDirectory()
        let path = directory.file("vault.db")
        var tally = Tally()
        var lines: [String] = []
        for hostile in Self.hostileSchemas {
            try Self.write(original, to: path)
            try plantWithPython(path, hostile.sql)
            let outcome = Self.judge(path, hostile.label, watchdog: watchdog)
            Self.record(outcome, hostile.label)
            tally.add(outcome)
            lines.append("\(hostile.label): \(outcome)")
            if hostile.refused {
                guard case let .detected(reason) = outcome else {
                    Issue.record("\(hostile.label) was accepted: \(outcome)")
                    continue
                }
                #expect(reason.contains("keyseal did not create"), "\(hostile.label): \(reason)")
            } else if case .harmless = outcome {
                // Accepted: keyseal's own writes must still come out exact.
                let before = try Vault.open(at: path).unlock(passphrase: secret(GoldenRecipe.passphrase))
                try before.rotate("gitlab", to: secret("glpat-after-tamper"), now: GoldenRecipe.createdAt + 600)
                try before.add(name: "added-after", fields: EntryFields(kind: "token", headerTemplate: "X-Key: {secret}"),
                               secret: secret("added-value"), now: GoldenRecipe.createdAt + 600)
                let after = try Vault.open(at: path).unlock(passphrase: secret(GoldenRecipe.passphrase))
                #expect(try secretText(after, "gitlab") == "glpat-after-tamper", "\(hostile.label)")
                #expect(try secretText(after, "added-after") == "added-value", "\(hostile.label)")
                #expect(try secretText(after, "immuta-pat") == "immuta-pat-golden-0002", "\(hostile.label)")
            }
        }
        #expect(tally.wrong == 0)
        print("tamper hostile schema objects: \(tally)\n  " + lines.joined(separator: "\n  "))
    }

    /// Opens are cheap enough for `keyseal header`: the schema check is one
    /// query on what SQLite has already read. Prints the cost per open.
    @Test func openCostWithTheSchemaCheck() throws {
        let (source, _) = try Self.sourceVault()
        let path = source.file("vault.db")
        let rounds = 1000
        let clock = ContinuousClock()
        let opens = try clock.measure { for _ in 0..<rounds { _ = try Vault.open(at: path) } }
        let checks = try clock.measure {
            let connection = try Connection(path: path, flags: 0x0000_0001)  // SQLITE_OPEN_READONLY
            for _ in 0..<rounds { #expect(try Schema.checkObjects(connection) == nil) }
        }
        print("tamper open cost: \(rounds) Vault.open calls in \(opens); the schema check alone, \(rounds) times: \(checks)")
    }
}

/// Plants SQL in a vault with python3's sqlite3 module (a real peer, with
/// none of keyseal's settings).
func plantWithPython(_ path: String, _ sql: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", """
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.executescript(sys.argv[2])
        c.close()
        """, path, sql]
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    process.waitUntilExit()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    guard process.terminationStatus == 0 else { throw TamperFailure("python3 could not plant \(sql): \(message)") }
}

struct TamperFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Aborts the test process, naming the case, when one case runs longer than
/// `limit` seconds: a hang is a failure, not a stuck `swift test`.
final class Watchdog: @unchecked Sendable {
    // safety: every field is read and written under `lock`.
    private let lock = NSLock()
    private var running: [Int: (String, Date)] = [:]
    private var next = 0
    private var stopped = false

    init(limit: TimeInterval) {
        let thread = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: 1)
                self.lock.lock()
                let stopped = self.stopped
                let late = self.running.values.first { Date().timeIntervalSince($0.1) > limit }
                self.lock.unlock()
                if stopped { return }
                if let late {
                    print("tamper watchdog: \(late.0) ran over \(Int(limit)) s")
                    abort()
                }
            }
        }
        thread.start()
    }

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    func guarding<T>(_ label: String, _ body: () -> T) -> T {
        lock.lock()
        let id = next
        next += 1
        running[id] = (label, Date())
        lock.unlock()
        defer {
            lock.lock()
            running[id] = nil
            lock.unlock()
        }
        return body()
    }
}
