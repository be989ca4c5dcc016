// The fuzz targets: each takes any bytes and must neither crash, hang nor
// break the invariant it checks. scripts/fuzz links this file with a
// one-line libFuzzer entry point (Tests/Fuzz/Entry/<target>.swift);
// FuzzCorpusTests replays every corpus and crash input through the same
// functions in `swift test`. A broken invariant stops the process
// (`fuzzCheck`), so libFuzzer keeps the input as a crash.
import Foundation
@testable import Agent
@testable import keyseal
@testable import Policy
import Sealing
@testable import Storage

enum FuzzTargets {
    static let all: [(name: String, run: @Sendable (UnsafeRawBufferPointer) -> Void)] = [
        ("expiry", fuzzExpiry),
        ("header", fuzzHeaderTemplate),
        ("agent", fuzzAgentFrame),
        ("dotenv", fuzzDotenv),
        ("export", fuzzExportJSON),
        ("vault", fuzzVaultOpen),
    ]

    static func named(_ name: String) -> (@Sendable (UnsafeRawBufferPointer) -> Void)? {
        all.first { $0.name == name }?.run
    }
}

func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz invariant broken: \(message())", file: file, line: line) }
}

// MARK: expiry

/// `--expires TEXT`: any text, in three zones, past allowed or not. An
/// accepted instant is never after the latest one, and never in the past
/// unless allowed; every refusal renders its message.
func fuzzExpiry(_ data: UnsafeRawBufferPointer) {
    let text = String(decoding: data, as: UTF8.self)
    let now: Int64 = 1_800_000_000
    for offset: Int64 in [0, 19_800, -36_000] {
        let parser = ExpiryParser(now: now, zone: FixedOffsetZone(seconds: offset))
        for allowPast in [false, true] {
            do {
                let expiry = try parser.parse(text, allowPast: allowPast)
                if let instant = expiry.instant {
                    fuzzCheck(instant <= ExpiryParser.latest, "\(text.debugDescription) gave \(instant), after the latest instant")
                    fuzzCheck(allowPast || instant > now, "\(text.debugDescription) gave \(instant), in the past")
                }
            } catch {
                fuzzCheck(!error.description.isEmpty, "an empty expiry error")
            }
        }
    }
}

// MARK: header templates

/// `--header TEXT`: an accepted template is exactly prefix + {secret} +
/// suffix, its name a token, and nothing in it can end the header line.
func fuzzHeaderTemplate(_ data: UnsafeRawBufferPointer) {
    let text = String(decoding: data, as: UTF8.self)
    do {
        let template = try HeaderTemplate(text)
        fuzzCheck(template.prefix + CredentialKind.secretPlaceholder + template.suffix == text, "template does not rebuild")
        fuzzCheck(!template.fieldName.isEmpty && template.fieldName.utf8.allSatisfy(HeaderTemplate.isTokenCharacter),
                  "field name \(template.fieldName.debugDescription) is not a token")
        fuzzCheck(!text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }, "template holds CR, LF or NUL")
        fuzzCheck(template.prefix.hasSuffix(template.valuePrefix), "value prefix is not the end of the prefix")
    } catch {
        fuzzCheck(!error.description.isEmpty, "an empty template error")
    }
}

// MARK: agent protocol

/// One request body, as the agent reads it after the length prefix, answered
/// by a real AgentServer (never run, so no socket traffic). Whatever comes
/// in, the answer is one well-formed frame; a sealed value opens again to
/// the plaintext sent.
func fuzzAgentFrame(_ data: UnsafeRawBufferPointer) {
    guard data.count >= 1, data.count <= AgentProtocol.maxFrame else { return }
    let server = AgentFuzzServer.shared.current()
    guard let request = try? SecretBytes(copying: data) else { return }
    let answer = server.respond(to: GuardedBuffer(request), ContinuousClock().now)
    if data[0] != AgentProtocol.version {
        fuzzCheck(answer.status == .unsupportedVersion && answer.close, "a foreign version was not refused")
        return
    }
    if data.count >= 2, data[1] == Opcode.lock.rawValue, answer.status == .ok {
        AgentFuzzServer.shared.replace()
    }
    guard let frame = answer.frame else {
        fuzzCheck(answer.status != .ok || data[1] == Opcode.lock.rawValue, "an ok answer without a frame")
        return
    }
    frame.bytes.withUnsafeBytes { bytes in
        fuzzCheck(bytes.count >= Wire.prefixLength + Wire.headerLength, "answer frame too short")
        let length = Int(Wire.u32(bytes, at: 0))
        fuzzCheck(length == bytes.count - Wire.prefixLength && length <= AgentProtocol.maxFrame, "answer length prefix is wrong")
        let body = UnsafeRawBufferPointer(rebasing: bytes[Wire.prefixLength...])
        var fields = FieldReader(body: body)
        while fields.next() != nil {}
        fuzzCheck(fields.isAtEnd, "answer fields do not fill the frame")
        // A seal answered ok: the box must open to what was sent.
        guard data[1] == Opcode.seal.rawValue else { return }
        var request = FieldReader(body: data)
        guard let plaintext = request.next(), let associatedData = request.next() else { return }
        var reply = FieldReader(body: body)
        guard let nonce = reply.next(), let ciphertext = reply.next() else {
            fuzzCheck(false, "a seal answer without nonce and ciphertext")
            return
        }
        // Opened by the same agent, the box gives back the plaintext sent.
        var open: [UInt8] = [AgentProtocol.version, Opcode.open.rawValue]
        for field in [Array(nonce), Array(ciphertext), Array(associatedData)] {
            open += Wire.bigEndian(Int32(field.count)) + field
        }
        let opened = server.respond(to: GuardedBuffer(fuzzSecret(open)), ContinuousClock().now)
        let same = opened.status == .ok && opened.frame.map { frame in
            frame.bytes.withUnsafeBytes { bytes in
                var fields = FieldReader(body: UnsafeRawBufferPointer(rebasing: bytes[Wire.prefixLength...]))
                return fields.next().map { Array($0) == Array(plaintext) } ?? false
            }
        } ?? false
        fuzzCheck(same, "a sealed value does not open to its plaintext")
    }
}

/// One agent server per process, replaced after a lock request wipes its key.
final class AgentFuzzServer: @unchecked Sendable {
    // safety: fuzz inputs run one at a time (libFuzzer, or a serialized test).
    static let shared = AgentFuzzServer()
    private var server: AgentServer?
    private let directory: String

    private init() {
        var template = Array("/tmp/ksfuzz-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
    }

    func current() -> AgentServer {
        if let server { return server }
        let key = try! VaultKey(fuzzSecret([UInt8](repeating: 7, count: 32)))
        let vaultID = [UInt8](repeating: 1, count: 16)
        let made = try! AgentServer(socketPath: "\(directory)/agent", key: key, vaultID: vaultID, idleTimeout: 600)
        server = made
        return made
    }

    func replace() {
        server = nil
        unlink("\(directory)/agent")
    }
}

// MARK: imports

/// A dotenv file (`keyseal import --from dotenv`), read from a file
/// descriptor the way the command reads it, into a dry-run import.
func fuzzDotenv(_ data: UnsafeRawBufferPointer) {
    ImportFuzzVault.shared.withSource(data) { source, session in
        try DotenvReader(file: "fuzz.env", template: ImportFuzzVault.template).read(&source, progress: { _, _ in }, into: session)
    }
    // Line by line as well: a parsed line has a name and a non-empty value
    // without the line's own end.
    for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
        let bytes = [UInt8](line)
        bytes.withUnsafeBytes { line in
            do {
                guard let assignment = try DotenvReader.parse(line) else { return }
                fuzzCheck(!assignment.name.isEmpty && assignment.value.count > 0, "an empty dotenv name or value")
            } catch {}
        }
    }
}

/// A plaintext JSON export (`keyseal import FILE`), scanned as it streams
/// in; every entry record is read by ExportRecord.read.
func fuzzExportJSON(_ data: UnsafeRawBufferPointer) {
    ImportFuzzVault.shared.withSource(data) { source, session in
        try ExportReader.readPlaintext(&source, file: "fuzz.json", progress: { _, _ in }, into: session)
    }
    // And the input as one entry record.
    _ = try? ImportFuzzVault.shared.vault.checkImport(replace: false) { session in
        try ExportRecord.read(data, into: CheckedImport(session, prefix: ""))
    }
}

/// A vault with one entry, for dry-run imports (nothing is written).
final class ImportFuzzVault: @unchecked Sendable {
    // safety: fuzz inputs run one at a time.
    static let shared = ImportFuzzVault()
    static let template = TransferEntry(name: "", fields: EntryFields(kind: "token", headerTemplate: "Authorization: Bearer {secret}"),
                                        createdAt: 1_800_000_000, updatedAt: 1_800_000_000)
    let vault: Vault
    private let directory: String

    private init() {
        var template = Array("/tmp/ksfuzz-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
        let passphrase = fuzzPassphrase()
        vault = try! Vault.create(at: "\(directory)/vault.db", passphrase: passphrase, kdf: .insecureTesting).vault
    }

    /// Hands `data` to `read` as a file descriptor (an unlinked file), and the read
    /// entries to a dry run. Refusals are expected; crashes are not.
    func withSource(_ data: UnsafeRawBufferPointer, _ read: (inout GuardedByteSource, CheckedImport) throws -> Void) {
        // An unlinked temporary file: the readers take a descriptor.
        var template = Array("/tmp/ksfuzz-input-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        if fd >= 0 { unlink(String(cString: template)) }
        guard fd >= 0 else { fatalError("mkstemp failed") }
        defer { close(fd) }
        var written = 0
        while written < data.count {
            let count = write(fd, data.baseAddress! + written, data.count - written)
            guard count > 0 else { fatalError("write to the input file failed") }
            written += count
        }
        lseek(fd, 0, SEEK_SET)
        guard var source = try? GuardedByteSource(fd: fd, windowSize: 4096) else { return }
        _ = try? vault.checkImport(replace: false) { session in try read(&source, CheckedImport(session, prefix: "")) }
    }
}

// MARK: vault opening

/// Any bytes as a vault file: opened, its header and every entry's metadata
/// read, then unlocked with the passphrase of the seed vaults ("fuzz") and
/// every entry opened. Errors are expected; a crash or hang is not.
func fuzzVaultOpen(_ data: UnsafeRawBufferPointer) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ksfuzz-vault-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = "\(directory)/vault.db"
    guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { return }
    guard let vault = try? Vault.open(at: path) else { return }
    guard let entries = try? vault.entries() else { return }
    for entry in entries { _ = try? vault.sealedEntry(named: entry.name) }
    let passphrase = fuzzPassphrase()
    guard let unlocked = try? vault.unlock(passphrase: passphrase) else { return }
    for entry in entries { _ = try? unlocked.open(entry.name) }
}

func fuzzSecret(_ bytes: [UInt8]) -> SecretBytes {
    var secret = try! SecretBytes(count: bytes.count)
    secret.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
    return secret
}

func fuzzPassphrase() -> SecretBytes { fuzzSecret(Array("fuzz".utf8)) }
