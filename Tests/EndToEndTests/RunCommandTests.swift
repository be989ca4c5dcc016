import Foundation
import Testing

@Suite("keyseal run: secrets in the child's environment, its exit status, its refusals")
struct RunCommandTests {
    /// A vault with entries `a` and `b`; returns their secrets.
    private func vaultWithTwo(_ sandbox: Sandbox, tag: String) async throws -> (a: String, b: String, runs: [RunResult]) {
        let a = Sentinel.make("\(tag)-a")
        let b = Sentinel.make("\(tag)-b")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("a", secret: a))
        runs.append(try await sandbox.add("b", secret: b, options: ["--kind", "api-key"]))
        return (a, b, runs)
    }

    @Test("both secrets reach the command, byte for byte, and KEYSEAL_PASSPHRASE_FILE does not")
    func passesSecrets() async throws {
        let sandbox = try Sandbox()
        let (a, b, setup) = try await vaultWithTwo(sandbox, tag: "run-env")
        let result = try await sandbox.run([
            "run", "--env", "A=a", "--env", "B=b", "--vault", sandbox.vault, "--",
            "sh", "-c", #"printf "%s|%s|%s" "$A" "$B" "${KEYSEAL_PASSPHRASE_FILE-unset}""#,
        ])
        #expect(result.status == 0, "\(result)")
        #expect(result.out == "\(a)|\(b)|unset", "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")

        // A variable the runner's environment already has is replaced, not doubled.
        let replaced = try await sandbox.run(["run", "--env", "HOME=a", "--vault", sandbox.vault, "--", "sh", "-c", "env"])
        #expect(replaced.status == 0, "\(replaced)")
        #expect(replaced.out.split(separator: "\n").filter { $0.hasPrefix("HOME=") } == ["HOME=\(a)"], "\(replaced)")
        try sandbox.expectSealed(a, runs: setup + [result, replaced])
        try sandbox.expectSealed(b, runs: setup + [result, replaced])
    }

    @Test("the exit status is the command's", arguments: [0, 1, 7, 42, 255])
    func exitStatus(_ status: Int32) async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-status-\(status)")
        let result = try await sandbox.run(["run", "--env", "T=a", "--vault", sandbox.vault, "--", "sh", "-c", "echo out; echo err >&2; exit \(status)"])
        #expect(result.status == status, "\(result)")
        #expect(result.out == "out\n", "\(result)")
        #expect(result.err == "err\n", "\(result)")
        try sandbox.expectSealed(a, runs: setup + [result])
    }

    @Test("a signal that ends the command ends run the same way (the shell sees 128 + SIGTERM)")
    func signalPassesThrough() async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-signal")
        let result = try await sandbox.shell(
            #"trap - TERM; "$0" run --env T=a --vault "$1" -- sh -c 'kill -TERM $$; sleep 5; echo survived'; echo "status=$?""#,
            [sandbox.vault])
        #expect(result.status == 0, "\(result)")
        #expect(result.out == "status=143\n", "\(result)")
        try sandbox.expectSealed(a, runs: setup + [result])
    }

    @Test("127 for a command that is not there, with its name, and nothing run")
    func missingCommand() async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-missing")
        var runs: [RunResult] = []
        for command in ["keyseal-no-such-command", "./no-such-script", sandbox.work + "/no-such-file"] {
            let result = try await sandbox.run(["run", "--env", "T=a", "--vault", sandbox.vault, "--", command, "arg"])
            runs.append(result)
            #expect(result.status == 127, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
            #expect(result.err.contains(command), "\(result)")
        }
        try sandbox.expectSealed(a, runs: setup + runs)
    }

    /// Run's help: "127 when it is not found, 126 when it cannot run", as env(1).
    @Test("126 for a command that is there but cannot be executed, and nothing run", arguments: ["script.sh", "a-directory"])
    func notExecutable(_ name: String) async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-noexec")
        let path = sandbox.work + "/" + name
        if name.hasSuffix(".sh") {
            try sandbox.write("#!/bin/sh\ntouch ran\n", to: path, mode: 0o600)
        } else {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }
        let result = try await sandbox.run(["run", "--env", "T=a", "--vault", sandbox.vault, "--", path])
        #expect(result.status == 126, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: ") && result.err.contains(path), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/ran"))
        try sandbox.expectSealed(a, runs: setup + [result])
    }

    @Test("64 for a bad --env, a missing --env or a missing command, and nothing run", arguments: [
        ["--env", "A"],
        ["--env", "1A=a"],
        ["--env", "A-B=a"],
        ["--env", "=a"],
        ["--env", "A=a", "--env", "A=b"],
        ["--env", "A="],
        [String](),
    ])
    func badMappings(_ mappings: [String]) async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-bad")
        let result = try await sandbox.run(["run"] + mappings + ["--vault", sandbox.vault, "--", "touch", "ran"])
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/ran"), "the command ran: \(result)")
        try sandbox.expectSealed(a, runs: setup + [result])
    }

    @Test("64 for no command, with or without --")
    func noCommand() async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-nocmd")
        var runs: [RunResult] = []
        for tail in [["--"], []] {
            let result = try await sandbox.run(["run", "--env", "A=a", "--vault", sandbox.vault] + tail)
            runs.append(result)
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: no command to run\n"), "\(result)")
            #expect(result.err.contains("keyseal: hint: "), "\(result)")
        }
        try sandbox.expectSealed(a, runs: setup + runs)
    }

    @Test("66 for an unknown entry, naming it, with a hint to run keyseal list, and nothing run")
    func unknownEntry() async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-unknown")
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["run", "--env", "A=a", "--env", "B=nope", "--vault", sandbox.vault, "--", "touch", "ran"])
        #expect(result.status == 66, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err == "keyseal: error: no entry named \"nope\"\nkeyseal: hint: run \"keyseal list\" to see the entries\n",
                "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the command ran or the vault changed: \(result)")
        try sandbox.expectSealed(a, runs: setup + [result])
    }

    @Test("77 for a wrong passphrase, and nothing run")
    func wrongPassphrase() async throws {
        let sandbox = try Sandbox()
        let (a, _, setup) = try await vaultWithTwo(sandbox, tag: "run-wrong")
        let wrong = sandbox.root + "/wrong"
        try sandbox.write("not it\n", to: wrong)
        let result = try await sandbox.run(["run", "--env", "A=a", "--vault", sandbox.vault, "--", "touch", "ran"],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": wrong])
        #expect(result.status == 77, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/ran"), "the command ran: \(result)")
        try sandbox.expectSealed(a, runs: setup + [result])
    }
}
