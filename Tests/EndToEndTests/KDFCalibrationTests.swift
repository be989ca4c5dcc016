// `--kdf calibrate`: Argon2id at 256 MiB with the passes measured on this
// machine. These runs pay the real cost (short targets keep them near a
// second each); what they assert is what a user can check, never a time.
import Foundation
import Testing

@Suite("init and passwd --kdf calibrate: passes measured here, stored as any preset's")
struct KDFCalibrationTests {
    static let calibratedMemory: Int64 = 256 << 20

    /// `created a vault at PATH (Argon2id calibrated: N passes, 256 MiB,
    /// about X.Y s here[; a bound])`: N, or nil if the line is not that.
    static func announcedPasses(_ text: String, prefix: String) -> Int64? {
        let pattern = #/Argon2id calibrated: (\d+) pass(?:es)?, 256 MiB, about \d+\.\d s here(?:; one pass is the least, and takes longer than the [0-9.]+ m?s asked|; 32 passes is the most keyseal accepts, short of the [0-9.]+ m?s asked)?\)/#
        guard text.hasPrefix(prefix), text.hasSuffix("\n"),
              let match = String(text.dropFirst(prefix.count).dropLast()).wholeMatch(of: pattern)
        else { return nil }
        // "1 passes" and "2 pass" are not what keyseal prints.
        let passes = Int64(match.1)
        let plural = text.contains(" passes, ")
        return passes.flatMap { ($0 == 1) != plural ? $0 : nil }
    }

    /// The passphrase slots as `key list --json` documents them: (kdf_ops, kdf_mem).
    static func passphraseSlots(_ sandbox: Sandbox) async throws -> [(ops: Int64, mem: Int64)] {
        let listed = try await sandbox.run(["key", "list", "--json", "--vault", sandbox.vault], env: noPassphraseSource)
        try #require(listed.status == 0, "\(listed)")
        let slots = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]], "\(listed)")
        return slots.filter { $0["method"] as? String == "passphrase" }.map {
            ((($0["kdf_ops"] as? NSNumber)?.int64Value) ?? -1, (($0["kdf_mem"] as? NSNumber)?.int64Value) ?? -1)
        }
    }

    /// Creates `sandbox.vault` calibrated for `time`; returns the passes
    /// init announced, after checking that the slot holds them.
    static func initCalibrated(_ sandbox: Sandbox, time: String, env: [String: String?] = [:]) async throws -> (passes: Int64, run: RunResult) {
        let created = try await sandbox.run(["init", "--kdf", "calibrate", "--kdf-time", time, "--vault", sandbox.vault], env: env)
        try #require(created.status == 0, "\(created)")
        #expect(created.stdout.isEmpty, "\(created)")
        let announced = announcedPasses(created.err, prefix: "keyseal: created a vault at \(sandbox.vault) (")
        let passes = try #require(announced, "init did not say what it chose: \(created)")
        let slots = try await passphraseSlots(sandbox)
        #expect(slots.count == 1, "\(slots)")
        #expect(slots.first?.ops == passes, "init said \(passes) passes, the slot holds \(slots)")
        #expect(slots.first?.mem == calibratedMemory, "\(slots)")
        // Within libsodium's minimum and the cap every vault is held to.
        #expect((1...32).contains(passes), "\(passes) passes")
        return (passes, created)
    }

    @Test("--kdf-time 200ms: a vault the passphrase opens and a wrong one does not; 1 to 32 passes over 256 MiB, as init said and key list shows")
    func calibratedVaultUnlocks() async throws {
        let sandbox = try Sandbox()
        let (passes, _) = try await Self.initCalibrated(sandbox, time: "200ms")

        let list = try await sandbox.run(["key", "list", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(list.status == 0, "\(list)")
        #expect(list.out == """
            SLOT  METHOD      COST
            1     passphrase  argon2id, \(passes) passes, 256 MiB

            """, "\(list)")

        try await sandbox.add("svc", secret: "calibrated-value")
        let right = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault])
        #expect(right.status == 0, "\(right)")
        #expect(right.out == "Authorization: Bearer calibrated-value\n", "\(right)")
        #expect(right.stderr.isEmpty, "\(right)")

        let wrongFile = sandbox.root + "/wrong-passphrase"
        try sandbox.write("not the passphrase\n", to: wrongFile)
        let wrong = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": wrongFile])
        #expect(wrong.status == 77, "\(wrong)")
        #expect(wrong.stdout.isEmpty, "\(wrong)")
        #expect(wrong.err == KeySlotCommandTests.wrongPassphrase, "\(wrong)")
    }

    @Test("a longer --kdf-time never gives fewer passes (200ms, then 2s)")
    func longerTargetMorePasses() async throws {
        let short = try Sandbox()
        let long = try Sandbox()
        let (fewer, _) = try await Self.initCalibrated(short, time: "200ms")
        let (more, _) = try await Self.initCalibrated(long, time: "2s")
        #expect(more >= fewer, "2s chose \(more) passes, 200ms \(fewer)")
    }

    @Test("--kdf-time accepts its floor, 100ms, and seconds with a decimal point (0.15s)")
    func targetsAtTheEdge() async throws {
        for time in ["100ms", "0.15s"] {
            let sandbox = try Sandbox()
            _ = try await Self.initCalibrated(sandbox, time: time)
        }
    }

    @Test("--kdf-time without calibrate, out of 100ms...60s or not a time: 64 before a passphrase is read, nothing created", arguments: [
        (["--kdf-time", "1s"], "--kdf-time needs --kdf calibrate"),
        (["--kdf", "moderate", "--kdf-time", "1s"], "--kdf-time needs --kdf calibrate"),
        (["--kdf", "insecure-testing", "--kdf-time", "500ms"], "--kdf-time needs --kdf calibrate"),
        (["--kdf", "calibrate", "--kdf-time", "99ms"], "--kdf-time 99ms is out of range"),
        (["--kdf", "calibrate", "--kdf-time", "0.09s"], "--kdf-time 0.09s is out of range"),
        (["--kdf", "calibrate", "--kdf-time", "61s"], "--kdf-time 61s is out of range"),
        (["--kdf", "calibrate", "--kdf-time", "60001ms"], "--kdf-time 60001ms is out of range"),
        (["--kdf", "calibrate", "--kdf-time", "0s"], "--kdf-time 0s is out of range"),
        (["--kdf", "calibrate", "--kdf-time", "1"], #""1" is not a time for --kdf-time"#),
        (["--kdf", "calibrate", "--kdf-time", "1m"], #""1m" is not a time for --kdf-time"#),
        (["--kdf", "calibrate", "--kdf-time=-1s"], #""-1s" is not a time for --kdf-time"#),
        (["--kdf", "calibrate", "--kdf-time", "1e3ms"], #""1e3ms" is not a time for --kdf-time"#),
        (["--kdf", "calibrate", "--kdf-time", ".5s"], #"".5s" is not a time for --kdf-time"#),
        (["--kdf", "calibrate", "--kdf-time", ""], #""" is not a time for --kdf-time"#),
    ])
    func refusedTargets(_ options: [String], _ message: String) async throws {
        let sandbox = try Sandbox()
        // With no passphrase source at all, getting as far as reading one would fail with 77.
        let result = try await sandbox.run(["init"] + options + ["--vault", sandbox.vault], env: noPassphraseSource)
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: \(message)\nkeyseal: hint: "), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work).isEmpty, "something was created")
        #expect(try sandbox.regularFiles(under: [sandbox.home]).isEmpty, "something was created under HOME")
    }

    @Test("help and bash completions offer calibrate for init's and passwd's --kdf, not export's")
    func offered() async throws {
        let sandbox = try Sandbox()
        for command in ["init", "passwd"] {
            let help = try await sandbox.run([command, "--help"])
            #expect(help.status == 0, "\(help)")
            // Wrapped at 80 columns: compare the words.
            let words = help.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains("(values: interactive, moderate, sensitive, calibrate; default: moderate)"), "\(help)")
            #expect(help.out.contains("--kdf-time <duration>"), "\(help)")
        }
        let export = try await sandbox.run(["export", "--help"])
        #expect(!export.out.contains("calibrate") && !export.out.contains("--kdf-time"), "\(export)")
        let bash = try await sandbox.run(["completions", "bash"])
        #expect(bash.status == 0, "\(bash)")
        let values = #"'interactive'$'\n''moderate'$'\n''sensitive'"#
        #expect(bash.out.components(separatedBy: values + #"$'\n''calibrate'"#).count - 1 == 2, "\(bash)")
        #expect(bash.out.components(separatedBy: values).count - 1 == 3, "\(bash)")
    }

    @Test("passwd refuses a stray or bad --kdf-time with 64 before unlocking: the vault untouched, no copy taken")
    func passwdRefusesTargets() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        for (options, message) in [
            (["--kdf", "sensitive", "--kdf-time", "1s"], "--kdf-time needs --kdf calibrate"),
            (["--kdf", "calibrate", "--kdf-time", "2min"], #""2min" is not a time for --kdf-time"#),
            (["--kdf", "calibrate", "--kdf-time", "90s"], "--kdf-time 90s is out of range"),
        ] {
            let result = try await sandbox.shell(#"exec "$0" "$@" 3</dev/null"#,
                                                 ["passwd", "--new-passphrase-fd", "3"] + options + ["--vault", sandbox.vault],
                                                 env: noPassphraseSource)
            #expect(result.status == 64, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: \(message)\n"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed, or a copy was taken")
    }

    @Test("calibrated init and passwd: the passphrases in no process's argv or environment, in no stderr, in no file; passwd's new slot calibrated")
    func passphrasesStayOut() async throws {
        let sandbox = try Sandbox()
        let first = Sentinel.make("calibrate-init")
        let second = Sentinel.make("calibrate-passwd")
        let firstFile = sandbox.root + "/first-passphrase"
        let secondFile = sandbox.root + "/second-passphrase"
        try sandbox.write(first + "\n", to: firstFile)
        try sandbox.write(second + "\n", to: secondFile)
        var runs: [RunResult] = []

        let sampler = ProcSampler(secret: "sentinel-calibrate-") { view in
            view.arguments.first?.hasSuffix("keyseal") == true && view.arguments.contains("calibrate")
        }
        let (initPasses, created) = try await Self.initCalibrated(sandbox, time: "200ms", env: ["KEYSEAL_PASSPHRASE_FILE": firstFile])
        runs.append(created)
        let changed = try await sandbox.shell(#"exec "$0" "$@" 3<"$KS_NEW""#,
                                              ["passwd", "--new-passphrase-fd", "3", "--kdf", "calibrate", "--kdf-time", "300ms",
                                               "--vault", sandbox.vault],
                                              env: ["KS_NEW": secondFile, "KEYSEAL_PASSPHRASE_FILE": firstFile])
        let report = sampler.stop()
        runs.append(changed)

        #expect(changed.status == 0, "\(changed)")
        #expect(changed.stdout.isEmpty, "\(changed)")
        let firstLine = String(changed.err.prefix { $0 != "\n" }) + "\n"
        let said = Self.announcedPasses(firstLine.replacingOccurrences(of: "); the old one opens nothing in it\n", with: ")\n"),
                                        prefix: "keyseal: changed the passphrase of \(sandbox.vault) (")
        let passes = try #require(said, "passwd did not say what it chose: \(changed)")
        let slots = try await Self.passphraseSlots(sandbox)
        #expect(slots.count == 1 && slots.first?.ops == passes && slots.first?.mem == Self.calibratedMemory, "\(slots)")
        #expect((1...32).contains(passes) && (1...32).contains(initPasses))

        let withNew = try await sandbox.run(["list", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": secondFile])
        #expect(withNew.status == 0, "\(withNew)")
        let added = try await sandbox.run(["add", "svc", "--vault", sandbox.vault], stdin: "after-passwd\n", env: ["KEYSEAL_PASSPHRASE_FILE": secondFile])
        #expect(added.status == 0, "\(added)")
        let withOld = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault], env: ["KEYSEAL_PASSPHRASE_FILE": firstFile])
        #expect(withOld.status == 77, "\(withOld)")

        #expect(report.samples > 5, "too few samples: \(report.samples)")
        #expect(report.seen.contains { $0.arguments.contains("init") }, "the calibrating init was never seen")
        #expect(report.seen.contains { $0.arguments.contains("passwd") }, "the calibrating passwd was never seen")
        #expect(report.seen.contains { $0.environ != nil }, "no environ of keyseal could be read")
        #expect(report.cmdlineLeaks.isEmpty, "a passphrase is in argv: \(report.cmdlineLeaks)")
        #expect(report.environLeaks.isEmpty, "a passphrase is in an environment: \(report.environLeaks)")
        for secret in [first, second] {
            try sandbox.expectSealed(secret, runs: runs)
        }
    }
}
