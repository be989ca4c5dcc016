import Foundation
import Testing

/// A secret as piped to `keyseal add`, named for the test report.
struct SecretInput: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]

    init(_ label: String, _ text: String) {
        self.label = label
        bytes = Array(text.utf8)
    }

    init(_ label: String, bytes: [UInt8]) {
        self.label = label
        self.bytes = bytes
    }

    var testDescription: String { label }
}

@Suite("secret input on stdin")
struct SecretInputTests {
    static let limit = 64 * 1024

    static let acceptedInputs: [(SecretInput, String)] = [
        (SecretInput("echo adds one LF", "abc\n"), "abc"),
        (SecretInput("printf adds none", "abc"), "abc"),
        (SecretInput("inner spaces are kept", " a b \n"), " a b "),
        (SecretInput("UTF-8 is kept", "jeton-\u{e9}t\u{e9}\n"), "jeton-\u{e9}t\u{e9}"),
    ]

    @Test("exactly one trailing LF is dropped; everything else is kept", arguments: acceptedInputs)
    func accepted(input: SecretInput, stored: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let added = try await sandbox.run(["add", "entry", "--vault", sandbox.vault], stdin: Data(input.bytes))
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.isEmpty, "\(added)")

        let got = try await sandbox.run(["get", "-n", "entry", "--vault", sandbox.vault])
        #expect(got.status == 0, "\(got)")
        #expect(got.stdout == Data(stored.utf8), "\(got)")
    }

    static let refusedInputs: [(SecretInput, String)] = [
        (SecretInput("two trailing LFs leave one", "abc\n\n"), "line feed"),
        (SecretInput("LF inside", "ab\ncd\n"), "line feed"),
        (SecretInput("CR inside", "ab\rcd"), "carriage return"),
        (SecretInput("CRLF ending leaves a CR", "abc\r\n"), "carriage return"),
        (SecretInput("NUL inside", bytes: [0x61, 0x00, 0x62, 0x0A]), "NUL"),
        (SecretInput("NUL at the end", bytes: [0x61, 0x62, 0x00]), "NUL"),
        (SecretInput("empty", ""), "the secret is empty"),
        (SecretInput("only a LF", "\n"), "the secret is empty"),
        (SecretInput("one byte over 64 KiB", String(repeating: "x", count: limit + 1)), "longer than \(limit) bytes"),
        (SecretInput("far over 64 KiB", String(repeating: "x", count: limit + 5000)), "longer than \(limit) bytes"),
    ]

    @Test("a secret that is not one line of 1 to 65536 bytes is refused with 64, the vault untouched",
          arguments: refusedInputs)
    func refused(input: SecretInput, reason: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("existing", secret: "existing-value")
        let before = try sandbox.snapshot(sandbox.work)

        let added = try await sandbox.run(["add", "entry", "--vault", sandbox.vault], stdin: Data(input.bytes))
        #expect(added.status == 64, "\(added)")
        #expect(added.stdout.isEmpty, "\(added)")
        #expect(added.err.hasPrefix("keyseal: error: "), "\(added)")
        #expect(added.err.contains(reason), "\(added)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")

        let listed = try await sandbox.run(["list", "--json", "--vault", sandbox.vault])
        #expect(listed.status == 0 && !listed.out.contains("\"entry\""), "\(listed)")
    }

    @Test("a secret of exactly 64 KiB is stored and read back whole")
    func largestSecret() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let secret = String(repeating: "s", count: Self.limit)
        let added = try await sandbox.run(["add", "big", "--vault", sandbox.vault], stdin: secret + "\n")
        #expect(added.status == 0, "\(added)")
        let got = try await sandbox.run(["get", "-n", "big", "--vault", sandbox.vault])
        #expect(got.status == 0, "\(got.status) \(got.err)")
        #expect(got.stdout == Data(secret.utf8), "\(got.stdout.count) bytes back")
    }
}
