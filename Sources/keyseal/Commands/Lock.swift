import ArgumentParser
import Agent
import Policy
import Storage

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",abstract: "End the unlock agent: it wipes the key and exits.")

    @OptionGroup var vaultOptions: VaultOptions

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            guard let client = try AgentConnection.find(for: vault) else {
                Output.info("\(vault.path) was not unlocked")
                return
            }
            try client.lock()
            Output.info("locked \(vault.path)")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Say whether the vault is unlocked, and for how long.",
        discussion: "Exit status 0 when an agent holds the key, 1 when locked (for prompts and scripts).")

    @OptionGroup var vaultOptions: VaultOptions

    @Flag(help: "Print JSON: {\"vault\", \"unlocked\", \"seconds_left\", \"pid\"}.")
    var json = false

    func run() throws {
        var unlocked = false
        try Failure.report {
            let vault = try vaultOptions.open()
            // status asks the agent without extending its idle time.
            let status = try AgentConnection.find(for: vault).map { try $0.status() }
            unlocked = status != nil
            if json {
                try Output.data(JSON.object([
                    ("vault", .string(vault.path)),
                    ("unlocked", .bool(unlocked)),
                    ("seconds_left", status.map { .number($0.secondsLeft) } ?? .null),
                    ("pid", status.map { .number(Int64($0.pid)) } ?? .null),
                ]).rendered + "\n")
            } else if let status {
                try Output.data("unlocked: \(vault.path), \(AgentTime.describe(status.secondsLeft)) left (agent pid \(status.pid))\n")
            } else {
                try Output.data("locked: \(vault.path)\n")
            }
        }
        if !unlocked { throw ExitCode(ExitStatus.failure.rawValue) }
    }
}
