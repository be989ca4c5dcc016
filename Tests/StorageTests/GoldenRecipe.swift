import Sealing
@testable import Storage

/// The recipe of the committed golden vault (Vectors/README.md): the same
/// entries, in the same order, with the same fields.
enum GoldenRecipe {
    static let passphrase = "golden-passphrase-v1"
    static let createdAt: Int64 = 1_798_761_600  // 2027-01-01T00:00:00Z

    struct Item {
        let name: String
        let secret: String
        let fields: EntryFields
    }

    static let items: [Item] = [
        Item(name: "immuta-api-key", secret: "IMMUTA-API-KEY-GOLDEN-0001",
             fields: EntryFields(kind: "api-key", headerTemplate: "Authorization: {secret}",
                                 url: "https://immuta.example.com", description: "Immuta API key")),
        Item(name: "immuta-pat", secret: "immuta-pat-golden-0002",
             fields: EntryFields(kind: "pat", headerTemplate: "Authorization: Bearer {secret}",
                                 url: "https://immuta.example.com", description: "Immuta PAT for CI",
                                 expiresAt: 1_801_353_600)),  // 2027-01-31T00:00:00Z
        Item(name: "gitlab", secret: "glpat-golden-0003",
             fields: EntryFields(kind: "token", headerTemplate: "PRIVATE-TOKEN: {secret}")),
    ]

    static func secretBytes(_ text: String) -> SecretBytes {
        let bytes = Array(text.utf8)
        var secret = try! SecretBytes(count: bytes.count)
        secret.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
        return secret
    }
}
