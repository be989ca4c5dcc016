import Foundation
import Testing

@Suite("the passphrase from a descriptor or a file, never a terminal here")
struct PassphraseTests {
    /// Opens the passphrase file on descriptor 3, then becomes keyseal.
    static func onFD3(_ file: String) -> String {
        "exec \"$0\" \"$@\" --passphrase-fd 3 3<'\(file)'"
    }

    @Test("--passphrase-fd 3 inits, adds (secret on stdin) and gets; the same vault opens from the file")
    func passphraseFD() async throws {
        let sandbox = try Sandbox()
        // The descriptor holds the passphrase without a newline, the file with
        // one: exactly one trailing newline is dropped, so both are the same.
        let bare = sandbox.root + "/bare-passphrase"
        try sandbox.write(sandbox.passphrase, to: bare, mode: 0o600)
        let noFile: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": nil]

        let created = try await sandbox.shell(Self.onFD3(bare), ["init", "--kdf", "insecure-testing", "--vault", sandbox.vault], env: noFile)
        #expect(created.status == 0, "\(created)")
        let added = try await sandbox.shell(Self.onFD3(bare), ["add", "entry", "--vault", sandbox.vault], stdin: "fd-value\n", env: noFile)
        #expect(added.status == 0, "\(added)")
        let got = try await sandbox.shell(Self.onFD3(bare), ["get", "entry", "--vault", sandbox.vault], env: noFile)
        #expect(got.status == 0, "\(got)")
        #expect(got.out == "fd-value\n", "\(got)")
        #expect(got.stderr.isEmpty, "\(got)")

        let fromFile = try await sandbox.run(["get", "-n", "entry", "--vault", sandbox.vault])
        #expect(fromFile.status == 0 && fromFile.out == "fd-value", "\(fromFile)")
    }

    @Test("--passphrase-fd wins over KEYSEAL_PASSPHRASE_FILE")
    func descriptorWinsOverFile() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "value")
        let wrong = sandbox.root + "/wrong"
        try sandbox.write("wrong passphrase\n", to: wrong, mode: 0o600)
        let result = try await sandbox.shell(Self.onFD3(wrong), ["get", "entry", "--vault", sandbox.vault])
        #expect(result.status == 77, "the file's passphrase was used instead of the descriptor's: \(result)")
    }

    @Test("--passphrase-fd 0 reads the passphrase from stdin for get")
    func passphraseOnStdinForGet() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "value")
        let got = try await sandbox.run(["get", "entry", "--passphrase-fd", "0", "--vault", sandbox.vault],
                                        stdin: sandbox.passphrase + "\n", env: ["KEYSEAL_PASSPHRASE_FILE": nil])
        #expect(got.status == 0 && got.out == "value\n", "\(got)")
    }

    @Test("--passphrase-fd 0 with a secret on stdin is refused with 64, the vault untouched")
    func passphraseAndSecretOnStdin() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["add", "entry", "--passphrase-fd", "0", "--vault", sandbox.vault],
                                           stdin: sandbox.passphrase + "\nsecret-value\n")
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: stdin cannot carry both the passphrase and the secret\n"), "\(result)")
        #expect(result.err.contains("keyseal: hint: ") && result.err.contains("--passphrase-fd 3"), "\(result)")
        #expect(!result.stderr.contains("secret-value") && !result.stderr.contains(sandbox.passphrase), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    @Test("--passphrase-fd naming a closed descriptor is refused with 64, the vault untouched")
    func closedDescriptor() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("entry", secret: "value")
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["get", "entry", "--passphrase-fd", "9", "--vault", sandbox.vault])
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: --passphrase-fd 9 is not an open file descriptor\n"), "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }

    @Test("the children of this suite have no terminal, so the no-terminal cases are real")
    func noControllingTerminal() async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.spawn("/bin/sh", ["-c", "exec 3</dev/tty"], stdin: Data(), env: [:],
                                             label: ["sh -c 'exec 3</dev/tty'"])
        #expect(result.status != 0, "a child could open /dev/tty: \(result)")
    }
}
