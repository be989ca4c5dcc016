import ArgumentParser
import Policy
import Storage

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Read and change vault settings (no passphrase needed).",
        discussion: """
            Settings: warn-within (the expiry warning window, default 14d; an \
            entry's own --warn-within wins over it), refuse-expired (true: \
            header, get, curl and run refuse an expired entry, exit 2) and \
            agent-timeout (how long keyseal unlock keeps the key without use, \
            default 15m) and exchange-timeout (how long a bearer entry's API \
            key exchange may take, 1s to 5m, default 10s).
              keyseal config set warn-within 7d
              keyseal config set refuse-expired true
            """,
        subcommands: [ConfigGet.self, ConfigSet.self, ConfigUnset.self, ConfigList.self])
}

extension VaultSetting: ExpressibleByArgument {
    /// The stored text for what the user typed.
    func storedValue(_ text: String) throws -> String {
        switch self {
        case .warnWithin:
            let policy = ExpiryPolicy(now: Vault.currentTime(), zone: SystemZone())
            return String(try WindowInput.parse(text, policy: policy))
        case .refuseExpired:
            guard text == "true" || text == "false" else {
                throw CLIError(.usage, "refuse-expired is true or false, not \(text.debugDescription)")
            }
            return text
        case .agentTimeout:
            return String(try AgentTime.parse(text))
        case .exchangeTimeout:
            let seconds = try AgentTime.parse(text)
            guard BearerExchange.timeoutRange.contains(seconds) else {
                throw CLIError(.usage, "exchange-timeout must be between 1s and 5m, not \(text.debugDescription)")
            }
            return String(seconds)
        }
    }

    /// The stored text as the user would type it.
    func shown(_ stored: String) -> String {
        switch self {
        case .warnWithin: Int64(stored).map(WindowInput.describe) ?? stored
        case .refuseExpired: stored
        case .agentTimeout, .exchangeTimeout: Int64(stored).map(AgentTime.describe) ?? stored
        }
    }

    var defaultShown: String {
        switch self {
        case .warnWithin: WindowInput.describe(ExpiryPolicy.defaultWindow)
        case .refuseExpired: "false"
        case .agentTimeout: AgentTime.describe(AgentTime.defaultTimeout)
        case .exchangeTimeout: AgentTime.describe(BearerExchange.defaultTimeout)
        }
    }
}

struct ConfigGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print a setting (its default when unset).")
    @OptionGroup var vaultOptions: VaultOptions
    @Argument(help: "warn-within or refuse-expired.") var key: VaultSetting

    func run() throws {
        try Failure.report {
            let stored = try vaultOptions.open().setting(key.rawValue)
            try Output.data((stored.map(key.shown) ?? key.defaultShown) + "\n")
        }
    }
}

struct ConfigSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Change a setting.")
    @OptionGroup var vaultOptions: VaultOptions
    @Argument(help: "warn-within or refuse-expired.") var key: VaultSetting
    @Argument(help: "A duration for warn-within (7d, 2w), true or false for refuse-expired.") var value: String

    func run() throws {
        try Failure.report {
            let stored = try key.storedValue(value)
            try vaultOptions.open().setSetting(key.rawValue, stored)
            Output.info("\(key.rawValue) = \(key.shown(stored))")
        }
    }
}

struct ConfigUnset: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unset", abstract: "Return a setting to its default.")
    @OptionGroup var vaultOptions: VaultOptions
    @Argument(help: "warn-within or refuse-expired.") var key: VaultSetting

    func run() throws {
        try Failure.report {
            try vaultOptions.open().setSetting(key.rawValue, nil)
            Output.info("\(key.rawValue) = \(key.defaultShown) (default)")
        }
    }
}

struct ConfigList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Print every setting.", aliases: ["ls"])
    @OptionGroup var vaultOptions: VaultOptions
    @Flag(help: "Print JSON: an object of setting names to values.") var json = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            var pairs: [(String, String, Bool)] = []
            for key in VaultSetting.allCases {
                let stored = try vault.setting(key.rawValue)
                pairs.append((key.rawValue, stored.map(key.shown) ?? key.defaultShown, stored == nil))
            }
            if json {
                try Output.data(JSON.object(pairs.map { ($0.0, .string($0.1)) }).rendered + "\n")
            } else {
                try Output.data(pairs.map { "\($0.0)=\($0.1)\($0.2 ? " (default)" : "")\n" }.joined())
            }
        }
    }
}
