import ArgumentParser
import Storage

struct Rotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Replace an entry's secret, keeping the old one for 30 days.",
        discussion: """
            The new secret is read like add's. The value it replaces is kept as \
            the entry's previous version (shown by keyseal show, printed by \
            keyseal get --previous) and removed by the first write to the vault \
            30 days after the rotation, or at once with --purge-previous.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Option(help: ArgumentHelp("The new secret's expiry: 2027-01-31, 90d, never, …", valueName: "when"))
    var expires: String?

    @Flag(help: "Accept an expiry in the past.")
    var allowPast = false

    @Flag(help: "Keep no previous version: discard the replaced value and every older one.")
    var purgePrevious = false

    func run() throws {
        try Failure.report {
            let expiry = try expires.map { try FieldInput.expiry($0, allowPast: allowPast) }
            let vault = try vaultOptions.open()
            _ = try vault.metadata(named: name)
            let secret = try NewSecret.read(for: name, unlockOptions: unlockOptions)
            let unlocked = try unlockOptions.unlock(vault)
            let stored = try unlocked.rotate(name, to: secret, keepPrevious: !purgePrevious) { fields in
                if let expiry { fields.expiresAt = expiry }
            }
            let kept = purgePrevious ? "previous values discarded" : "previous value kept for 30 days"
            Output.info("rotated \(name.debugDescription) (fingerprint \(stored.fingerprintHex.prefix(12))), read back and verified; \(kept)")
        }
    }
}
