import Policy
import Sealing
import Storage

/// Every imported entry passes the checks `add` makes of what a user types,
/// on top of Storage's own: an export edited by hand or a dotenv file must
/// not bring in what `add` refuses (a secret of more than one line would
/// become a second header line; a template without exactly one {secret}; a
/// URL not in normal form). `--prefix` is applied here, to every source.
final class CheckedImport {
    let session: ImportSession
    let prefix: String

    init(_ session: ImportSession, prefix: String) {
        self.session = session
        self.prefix = prefix
    }

    func add(_ entry: TransferEntry, secret: borrowing SecretBytes) throws {
        var entry = entry
        entry.name = prefix + entry.name
        do {
            try Self.checkOneLine(secret)
            _ = try FieldInput.kind(entry.fields.kind)
            entry.fields.headerTemplate = try FieldInput.headerTemplate(entry.fields.headerTemplate)
            if let url = entry.fields.url { entry.fields.url = try FieldInput.url(url) }
            if let path = entry.fields.caCertificates, !path.hasPrefix("/") {
                throw CLIError(.usage, "its CA certificates path \(path.debugDescription) is not absolute")
            }
            try FieldInput.checkKind(entry.fields, name: entry.name)
        } catch let error as CLIError {
            throw CLIError(.usage, "entry \(entry.name.debugDescription): \(error.message)", hint: "fix it in the source; nothing was imported")
        }
        try session.add(entry, secret: secret)
    }

    func addPrevious(_ value: TransferPrevious, secret: borrowing SecretBytes) throws {
        try Self.checkOneLine(secret)
        try session.addPrevious(value, secret: secret)
    }

    static func checkOneLine(_ secret: borrowing SecretBytes) throws {
        if secret.containsAny(of: [0x0D, 0x0A, 0x00]) {
            throw CLIError(.usage, "a secret holds a carriage return, line feed or NUL byte (keyseal add refuses these too)",
                           hint: "a token is one line; fix it in the source; nothing was imported")
        }
    }
}
