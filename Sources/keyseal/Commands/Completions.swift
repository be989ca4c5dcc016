import ArgumentParser

struct Completions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completions",
        abstract: "Print a shell completion script.",
        discussion: """
            bash: keyseal completions bash > /etc/bash_completion.d/keyseal
            zsh:  keyseal completions zsh > "${fpath[1]}/_keyseal"
            fish: keyseal completions fish > ~/.config/fish/completions/keyseal.fish
            """)

    @Argument(help: "bash, zsh or fish.")
    var shell: String

    func run() throws {
        try Failure.report {
            guard let kind = CompletionShell(rawValue: shell) else {
                throw CLIError(.usage, "no completions for \(shell.debugDescription)", hint: "choose bash, zsh or fish")
            }
            try Output.data(Keyseal.completionScript(for: kind))
        }
    }
}
