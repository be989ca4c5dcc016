import ArgumentParser
import Policy
import Storage

/// The vault's expiry settings, as `keyseal config` stores them.
enum VaultSetting: String, CaseIterable {
    /// The warning window in seconds (set as a duration: 7d, 2w).
    case warnWithin = "warn-within"
    /// "true": header, get, curl and run refuse an expired entry.
    case refuseExpired = "refuse-expired"
    /// The unlock agent's idle timeout in seconds (set as 15m, 2h).
    case agentTimeout = "agent-timeout"
    /// How long an API key exchange may take, in seconds (set as 10s, 1m).
    case exchangeTimeout = "exchange-timeout"
}

/// `--refuse-expired` for the commands that use a secret.
struct ExpiryUseOptions: ParsableArguments {
    @Flag(help: "Refuse an expired entry (exit 2) instead of using it with a warning.")
    var refuseExpired = false
}

/// Says what the expiry policy decides at the moments a secret is used.
final class ExpiryReport {
    let vault: Vault
    let policy: ExpiryPolicy
    /// Read once, and only when an entry without a window of its own needs it.
    private var cachedVaultWindow: Int64??

    init(vault: Vault, now: Int64 = Vault.currentTime(), zone: LocalZone = SystemZone()) {
        self.vault = vault
        policy = ExpiryPolicy(now: now, zone: zone)
    }

    /// The vault's window, if one is set; a value that is not a positive
    /// number of seconds is ignored with a warning.
    func vaultWindow() throws -> Int64? {
        if let cachedVaultWindow { return cachedVaultWindow }
        var window: Int64?
        if let text = try vault.setting(VaultSetting.warnWithin.rawValue) {
            if let seconds = Int64(text), seconds > 0 {
                window = seconds
            } else {
                Output.warning("ignoring the vault setting warn-within=\(text.debugDescription); fix it with keyseal config set warn-within 14d")
            }
        }
        cachedVaultWindow = .some(window)
        return window
    }

    func state(of entry: EntryMetadata, window call: Int64? = nil) throws -> ExpiryState {
        if let remote = entry.remoteState, !remote.isUsable { return .revoked }
        guard entry.fields.expiresAt != nil else { return .never }
        // The vault's setting is read only when the entry has no window of its own.
        let window = try call ?? entry.warnWithin ?? vaultWindow() ?? ExpiryPolicy.defaultWindow
        return policy.state(expiresAt: entry.fields.expiresAt, window: window)
    }

    /// The words for an entry's state: its expiry, or what its server said.
    func describe(_ entry: EntryMetadata, state: ExpiryState) -> String {
        guard state == .revoked, let remote = entry.remoteState else { return policy.describe(expiresAt: entry.fields.expiresAt) }
        return switch remote {
        case .revoked: "was revoked on its server (keyseal pat revoke --keep)"
        case .inactive: "is no longer active on its server (keyseal pat sync)"
        case .missing: "is gone from its server's list (keyseal pat sync)"
        case .active: policy.describe(expiresAt: entry.fields.expiresAt)
        }
    }

    /// Before a secret is used: one warning line on stderr when the entry is
    /// expiring or expired; for an expired one, a refusal (exit 2) when the
    /// call or the vault asks for it.
    func checkBeforeUse(_ entry: EntryMetadata, refuseExpired: Bool) throws {
        let state = try state(of: entry)
        switch state {
        case .expiring:
            Output.warning("\(TextTable.printable(entry.name.debugDescription)) \(policy.describe(expiresAt: entry.fields.expiresAt))")
        case .expired, .revoked:
            let refuse = try refuseExpired || vault.setting(VaultSetting.refuseExpired.rawValue) == "true"
            let line = "\(TextTable.printable(entry.name.debugDescription)) \(describe(entry, state: state))"
            if refuse {
                let hint = state == .revoked
                    ? "its server no longer accepts it: make a new one (keyseal pat create …), then keyseal rm \(ShellQuote.quote(entry.name))"
                    : "rotate it: keyseal rotate \(ShellQuote.quote(entry.name)) --expires 90d"
                throw CLIError(.expired, "\(line); refusing to use it", hint: hint)
            }
            Output.warning("\(line); using it anyway")
        case .ok, .never, .stale:
            break
        }
    }
}
